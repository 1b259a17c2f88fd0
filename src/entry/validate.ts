/**
 * The checks every entry passes before it is stored, whether it came from a client or a peer,
 * in order of cost: shape and sizes (wire.ts), id, clock, table policy, proof, signature.
 * Pure apart from the key cache: no I/O.
 */
import { PublicKeyCache } from '../crypto/keys.js';
import { verifyPss } from '../crypto/signature.js';
import { fail } from '../errors.js';
import { proofValue } from '../pow/cluster.js';
import { sha256 } from '../crypto/hash.js';
import { toHex } from '../util/bytes.js';
import { entryId } from './canonical.js';
import type { Entry } from './types.js';
import { mirrors, type TableSet } from './table-policy.js';
import { entryFromJson, type WireLimits } from './wire.js';

export interface EntryPolicy extends WireLimits {
  /** '*' or the table fingerprints (hex) this node mirrors. */
  allowedTables: TableSet;
  /** Cluster value an entry's proof must reach. */
  powBits: number;
  /** How far in the future created_at may be, for writers with skewed clocks. */
  maxFutureSkewMs: number;
}

export interface ValidEntry {
  entry: Entry;
  id: Buffer;
  tableFingerprint: Buffer;
  powValue: number;
}

/**
 * Everything but the signature: cheap enough to run where the request is parsed. A caller
 * that already hashed the table key (sync matches a range's table first) passes the hash.
 */
export function checkEntryContent(entry: Entry, policy: EntryPolicy, now: number, claimedId?: Uint8Array, tableFingerprint?: Buffer): ValidEntry {
  const id = entryId(entry);
  if (claimedId && !id.equals(claimedId)) {
    fail('id_mismatch', `id does not match the entry's content (content hashes to ${toHex(id)})`);
  }
  if (entry.createdAt > now + policy.maxFutureSkewMs) {
    fail('created_in_future', `created_at is more than ${Math.round(policy.maxFutureSkewMs / 1000)} s in the future`);
  }
  const fingerprint = tableFingerprint ?? sha256(entry.table);
  if (!mirrors(policy.allowedTables, toHex(fingerprint))) {
    fail('table_not_allowed', 'this node does not mirror that table');
  }
  const powValue = proofValue(id, entry.proof);
  if (powValue < policy.powBits) {
    fail('pow_insufficient', `proof of work is worth ${powValue} bits, this node requires ${policy.powBits}`);
  }
  return { entry, id, tableFingerprint: fingerprint, powValue };
}

export function checkEntrySignature(valid: ValidEntry, keys: PublicKeyCache): void {
  const key = keys.get(valid.entry.table, toHex(valid.tableFingerprint));
  if (!verifyPss(key.key, valid.id, valid.entry.signature)) {
    fail('bad_signature', 'signature does not verify with the table key');
  }
}

/** Full check of one JSON entry, as a direct put or a synced entry gets. */
export function validateEntryJson(
  input: unknown,
  policy: EntryPolicy,
  keys: PublicKeyCache,
  now: number,
  urlId?: Buffer,
): ValidEntry {
  const { entry, claimedId } = entryFromJson(input, policy);
  if (urlId && claimedId && !urlId.equals(claimedId)) fail('id_mismatch', 'id in the URL and in the body differ');
  const valid = checkEntryContent(entry, policy, now, urlId ?? claimedId);
  checkEntrySignature(valid, keys);
  return valid;
}
