/** Entry <-> JSON wire form. Parsing is strict about types and sizes and lenient about extra fields. */
import { fail } from '../errors.js';
import { fromBase64, fromHex, toBase64, toHex } from '../util/bytes.js';
import { POW_PROOF_BYTES } from '../pow/cluster.js';
import { ENTRY_VERSION, type Entry, type EntryJson } from './types.js';

/** SPKI DER of a 4096-bit RSA key is 550 bytes; anything far beyond is not a key we accept. */
export const MAX_TABLE_KEY_BYTES = 1024;
/**
 * RSA-4096 signatures are 512 bytes, but the bound is the table key's: a key over 4096 bits
 * (which fits in 1,024 bytes) is then refused by the key check as key_size, not for its
 * signature's size. A signature of another length than the modulus fails to verify.
 */
export const MAX_SIGNATURE_BYTES = 1024;

export interface WireLimits {
  maxPayloadBytes: number;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parses the JSON form. Returns the entry and the id the sender claimed, if any. */
export function entryFromJson(input: unknown, limits: WireLimits): { entry: Entry; claimedId?: Buffer } {
  if (!isObject(input)) fail('malformed', 'an entry must be a JSON object');
  const v = input.v ?? input.version;
  if (v !== ENTRY_VERSION) fail('malformed', `unsupported entry version ${JSON.stringify(v)} (this node speaks ${ENTRY_VERSION})`);
  const createdAt = input.created_at;
  if (typeof createdAt !== 'number' || !Number.isSafeInteger(createdAt) || createdAt < 0) {
    fail('malformed', 'created_at must be a non-negative integer of milliseconds');
  }
  const entry: Entry = {
    version: ENTRY_VERSION,
    table: fromBase64(input.table, 'table', MAX_TABLE_KEY_BYTES),
    to: fromHex(input.to, 32, 'to'),
    createdAt,
    payload: fromBase64(input.payload, 'payload', limits.maxPayloadBytes),
    signature: fromBase64(input.signature, 'signature', MAX_SIGNATURE_BYTES),
    proof: fromBase64(input.proof, 'proof', POW_PROOF_BYTES),
  };
  if (entry.proof.length !== POW_PROOF_BYTES) fail('malformed', `proof must be ${POW_PROOF_BYTES} bytes`);
  if (entry.payload.length === 0) fail('malformed', 'payload must not be empty');
  if (entry.signature.length === 0) fail('malformed', 'signature must not be empty');
  const claimedId = input.id === undefined ? undefined : fromHex(input.id, 32, 'id');
  return claimedId ? { entry, claimedId } : { entry };
}

export function entryToJson(entry: Entry, id?: Uint8Array): EntryJson {
  const json: EntryJson = {
    v: entry.version,
    table: toBase64(entry.table),
    to: toHex(entry.to),
    created_at: entry.createdAt,
    payload: toBase64(entry.payload),
    signature: toBase64(entry.signature),
    proof: toBase64(entry.proof),
  };
  if (!id) return json;
  const { v, ...rest } = json;
  return { v, id: toHex(id), ...rest };
}
