/**
 * Entries in the browser: canonical bytes and id (docs/PROTOCOL.md §2.1), building a signed entry
 * with a proof minted elsewhere, and checking what a node returns (the client does not trust its
 * node: the id is recomputed and the signature verified before anything is shown).
 * Same layout as src/entry/canonical.ts, on Uint8Array instead of Buffer.
 */
import { fail } from '../errors.js';
import { bytesEqual, fromBase64, fromHex, toBase64, toHex } from './base64url.js';
import type { EntryJson, StoredEntryJson } from '../entry/json.js';
import type { BrowserPrivateKey, BrowserPublicKey, CryptoBackend } from './browser-crypto.js';

export const ENTRY_VERSION = 1;
const MAGIC = new TextEncoder().encode('p2pdb');
export const POW_PROOF_BYTES = 128;

export interface EntryContentBytes {
  table: Uint8Array;
  to: Uint8Array;
  createdAt: number;
  payload: Uint8Array;
}

/** The JSON wire form (§5), and what /get/ and /subscribe/ return. */
export type WireEntry = EntryJson;
export type StoredWireEntry = StoredEntryJson;

export function canonicalBytes(e: EntryContentBytes): Uint8Array {
  if (e.table.length > 0xffff) fail('malformed', 'table key too long');
  if (e.to.length !== 32) fail('malformed', 'to must be 32 bytes');
  if (!Number.isSafeInteger(e.createdAt) || e.createdAt < 0) fail('malformed', 'created_at must be a non-negative integer');
  const out = new Uint8Array(MAGIC.length + 1 + 2 + e.table.length + 32 + 8 + 4 + e.payload.length);
  const view = new DataView(out.buffer);
  let o = 0;
  out.set(MAGIC, o);
  o += MAGIC.length;
  out[o++] = ENTRY_VERSION;
  view.setUint16(o, e.table.length);
  o += 2;
  out.set(e.table, o);
  o += e.table.length;
  out.set(e.to, o);
  o += 32;
  view.setUint32(o, Math.floor(e.createdAt / 0x1_0000_0000));
  view.setUint32(o + 4, e.createdAt >>> 0);
  o += 8;
  view.setUint32(o, e.payload.length);
  o += 4;
  out.set(e.payload, o);
  return out;
}

export async function entryId(backend: CryptoBackend, e: EntryContentBytes): Promise<Uint8Array> {
  return backend.sha256(canonicalBytes(e));
}

export type BrowserMint = (id: Uint8Array, clusterBits: number) => Promise<Uint8Array>;

export interface BuildEntryOptions {
  backend: CryptoBackend;
  table: BrowserPrivateKey;
  recipient: BrowserPublicKey;
  plaintext: Uint8Array;
  powBits: number;
  mint: BrowserMint;
  createdAt?: number;
}

/** Seal, address, id, proof (minted by `mint`), signature: a wire entry ready for POST /put/. */
export async function buildEntry(opts: BuildEntryOptions): Promise<WireEntry & { id: string }> {
  const content: EntryContentBytes = {
    table: opts.table.publicKey.spki,
    to: opts.recipient.fingerprint,
    createdAt: opts.createdAt ?? Date.now(),
    payload: await opts.recipient.seal(opts.plaintext),
  };
  const id = await entryId(opts.backend, content);
  const proof = await opts.mint(id, opts.powBits);
  if (proof.length !== POW_PROOF_BYTES) fail('internal', 'the mint returned a proof of the wrong size');
  const signature = await opts.table.sign(id);
  return {
    v: ENTRY_VERSION,
    id: toHex(id),
    table: toBase64(content.table),
    to: toHex(content.to),
    created_at: content.createdAt,
    payload: toBase64(content.payload),
    signature: toBase64(signature),
    proof: toBase64(proof),
  };
}

export interface CheckedEntry {
  idHex: string;
  seq: string;
  receivedAt: number;
  createdAt: number;
  tableFingerprintHex: string;
  toHex: string;
  payload: Uint8Array;
}

/** Parses one entry a node returned and checks its id and table signature. Throws P2pdbError. */
export async function checkStoredEntry(backend: CryptoBackend, json: unknown): Promise<CheckedEntry> {
  const j = json as Partial<StoredWireEntry> | null;
  if (!j || typeof j !== 'object' || j.v !== ENTRY_VERSION) fail('malformed', 'not an entry of version 1');
  if (typeof j.created_at !== 'number' || !Number.isSafeInteger(j.created_at) || j.created_at < 0) fail('malformed', 'bad created_at');
  if (typeof j.id !== 'string') fail('malformed', 'the node returned an entry without an id');
  const content: EntryContentBytes = {
    table: fromBase64(j.table as string, 'table'),
    to: fromHex(j.to as string, 'to'),
    createdAt: j.created_at,
    payload: fromBase64(j.payload as string, 'payload'),
  };
  if (content.to.length !== 32) fail('malformed', 'to must be 32 bytes');
  const id = await entryId(backend, content);
  if (!bytesEqual(id, fromHex(j.id, 'id'))) fail('id_mismatch', `entry ${j.id} does not hash to its id`);
  const table = await backend.publicKey(content.table);
  if (!(await table.verify(id, fromBase64(j.signature as string, 'signature')))) {
    fail('bad_signature', `entry ${j.id} is not signed by its table key`);
  }
  return {
    idHex: j.id,
    seq: String(j.seq ?? ''),
    receivedAt: typeof j.received_at === 'number' ? j.received_at : 0,
    createdAt: content.createdAt,
    tableFingerprintHex: table.fingerprintHex,
    toHex: toHex(content.to),
    payload: content.payload,
  };
}
