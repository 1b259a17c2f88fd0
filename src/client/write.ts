/**
 * Building an entry on the writer's side: seal, address, id, proof, signature.
 * Minting is passed in so callers choose one thread, a worker pool, or a cache.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { sealEnvelope } from '../crypto/envelope.js';
import { parsePublicKey, type PublicKeyInfo } from '../crypto/keys.js';
import { signPss } from '../crypto/signature.js';
import { entryId } from '../entry/canonical.js';
import { ENTRY_VERSION, type Entry } from '../entry/types.js';
import { fail } from '../errors.js';

export type MintFunction = (id: Uint8Array, clusterBits: number) => Promise<Buffer>;

export interface CreateEntryOptions {
  tablePrivateKey: KeyObject;
  recipientPublicKey: KeyObject;
  plaintext: Uint8Array;
  /** Milliseconds since the epoch; defaults to now. */
  createdAt?: number;
  powBits: number;
  mint: MintFunction;
}

/** Through parsePublicKey, so the bytes are the canonical SPKI the node insists on and the size policy holds. */
export function publicInfo(key: KeyObject): PublicKeyInfo {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return parsePublicKey(pub.export({ type: 'spki', format: 'der' }));
}

export async function createEntry(opts: CreateEntryOptions): Promise<{ entry: Entry; id: Buffer }> {
  if (opts.tablePrivateKey.type !== 'private') fail('bad_key', 'the table key must be a private key');
  const table = publicInfo(opts.tablePrivateKey);
  const recipient = publicInfo(opts.recipientPublicKey);
  const content = {
    version: ENTRY_VERSION,
    table: table.spki,
    to: recipient.fingerprint,
    createdAt: opts.createdAt ?? Date.now(),
    payload: sealEnvelope(recipient.key, opts.plaintext),
  };
  const id = entryId(content);
  const proof = await opts.mint(id, opts.powBits);
  const signature = signPss(opts.tablePrivateKey, id);
  return { entry: { ...content, signature, proof }, id };
}
