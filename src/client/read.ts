/**
 * Reading entries a node returned. A client does not trust its node: every entry's id is
 * recomputed and its signature checked against the table key it carries before it is shown.
 */
import type { KeyObject } from 'node:crypto';
import { openEnvelope } from '../crypto/envelope.js';
import { PublicKeyCache } from '../crypto/keys.js';
import { verifyPss } from '../crypto/signature.js';
import { sha256 } from '../crypto/hash.js';
import { entryId } from '../entry/canonical.js';
import type { Entry, StoredEntryJson } from '../entry/types.js';
import { entryFromJson } from '../entry/wire.js';
import { fail } from '../errors.js';
import { proofValue } from '../pow/cluster.js';
import { toHex } from '../util/bytes.js';
import { publicInfo } from './write.js';

/** Generous: the node enforces its own limit; this only bounds what a client will decode. */
export const CLIENT_MAX_PAYLOAD_BYTES = 16 * 1024 * 1024;

export interface VerifiedEntry {
  entry: Entry;
  id: Buffer;
  idHex: string;
  tableFingerprintHex: string;
  toHex: string;
  /** Node-local fields, as the node reported them (not covered by the signature). */
  seq: string;
  receivedAt: number;
  /** What the proof of work is worth, in bits. */
  powValue: number;
}

export interface VerifyOptions {
  keys?: PublicKeyCache;
  /** Refuse entries whose proof is worth less; 0 (default) leaves that to the node. */
  minPowBits?: number;
}

/** Parses one /get/ item and checks id and signature; throws P2pdbError (malformed, id_mismatch, bad_signature, pow_insufficient). */
export function verifyStoredEntry(json: StoredEntryJson | unknown, opts: VerifyOptions = {}): VerifiedEntry {
  const { entry, claimedId } = entryFromJson(json, { maxPayloadBytes: CLIENT_MAX_PAYLOAD_BYTES });
  if (!claimedId) fail('malformed', 'the node returned an entry without an id');
  const id = entryId(entry);
  if (!id.equals(claimedId)) fail('id_mismatch', `entry ${toHex(claimedId)} does not hash to its id`);
  const tableFingerprintHex = toHex(sha256(entry.table));
  const table = (opts.keys ?? new PublicKeyCache(1)).get(entry.table, tableFingerprintHex);
  if (!verifyPss(table.key, id, entry.signature)) {
    fail('bad_signature', `entry ${toHex(id)} is not signed by its table key`);
  }
  const powValue = proofValue(id, entry.proof);
  if (opts.minPowBits !== undefined && powValue < opts.minPowBits) {
    fail('pow_insufficient', `entry ${toHex(id)} carries ${powValue} bits of work, ${opts.minPowBits} required`);
  }
  const meta = json as { seq?: unknown; received_at?: unknown };
  return {
    entry,
    id,
    idHex: toHex(id),
    tableFingerprintHex,
    toHex: toHex(entry.to),
    seq: typeof meta.seq === 'string' || typeof meta.seq === 'number' ? String(meta.seq) : '',
    receivedAt: typeof meta.received_at === 'number' ? meta.received_at : 0,
    powValue,
  };
}

/** Decrypts an entry's payload; decrypt_failed when it is not addressed to this key or was tampered with. */
export function openEntry(entry: Entry, recipientPrivateKey: KeyObject): Buffer {
  const own = publicInfo(recipientPrivateKey);
  if (!own.fingerprint.equals(entry.to)) fail('decrypt_failed', 'the entry is not addressed to this key');
  return openEnvelope(recipientPrivateKey, entry.payload);
}
