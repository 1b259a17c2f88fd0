/**
 * Canonical byte encoding of an entry's content, and its id.
 *
 *   "p2pdb" | version u8 | u16 BE table length | table SPKI DER | to (32) |
 *   created_at u64 BE (ms) | u32 BE payload length | payload
 *
 * id = SHA-256(encoding). Signature and proof are not part of it: they are made over the id.
 */
import { sha256 } from '../crypto/hash.js';
import { fail } from '../errors.js';
import type { Entry } from './types.js';

export const ENTRY_MAGIC = Buffer.from('p2pdb', 'ascii');

export type EntryContent = Pick<Entry, 'version' | 'table' | 'to' | 'createdAt' | 'payload'>;

export function canonicalBytes(e: EntryContent): Buffer {
  if (e.table.length > 0xffff) fail('malformed', 'table key too long');
  if (e.to.length !== 32) fail('malformed', 'to must be 32 bytes');
  if (!Number.isSafeInteger(e.createdAt) || e.createdAt < 0) fail('malformed', 'created_at must be a non-negative integer');
  const out = Buffer.allocUnsafe(ENTRY_MAGIC.length + 1 + 2 + e.table.length + 32 + 8 + 4 + e.payload.length);
  let o = ENTRY_MAGIC.copy(out, 0);
  out[o++] = e.version;
  o = out.writeUInt16BE(e.table.length, o);
  o += e.table.copy(out, o);
  o += e.to.copy(out, o);
  o = out.writeBigUInt64BE(BigInt(e.createdAt), o);
  o = out.writeUInt32BE(e.payload.length, o);
  e.payload.copy(out, o);
  return out;
}

export function entryId(e: EntryContent): Buffer {
  return sha256(canonicalBytes(e));
}
