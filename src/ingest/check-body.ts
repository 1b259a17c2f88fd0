/**
 * A request body in, checked entries out: parsing, seed compatibility and every check of
 * validate.ts. Pure apart from the key cache, so it runs the same inline or in a worker.
 * Checked entries come back packed into one buffer (with offsets), so a worker can hand them
 * over without copying. A peer's sync answer (checkPeerBody) is matched against what was asked
 * for in the same pass, so each of its entries is parsed and hashed once.
 */
import { sha256 } from '../crypto/hash.js';
import type { PublicKeyCache } from '../crypto/keys.js';
import { isP2pdbError, P2pdbError, type ErrorCode } from '../errors.js';
import type { EntryPolicy, ValidEntry } from '../entry/validate.js';
import { checkEntryContent, checkEntrySignature } from '../entry/validate.js';
import { entryFromJson } from '../entry/wire.js';
import { maxEntryBytes, parseBatch, parseSingle, type BodyKind } from './parse-body.js';
import { normaliseSeedFields } from './seed-compat.js';
import { ownedCopy } from '../util/bytes.js';
import type { Entry } from '../entry/types.js';

export interface CheckRequest {
  raw: Uint8Array;
  kind: BodyKind;
  /** Set for /put/:id: the body is one entry whose id must be this. */
  urlId?: Uint8Array;
  maxEntries: number;
  now: number;
  /** Set for a peer's sync answer (NDJSON): what was asked for; see checkPeerBody. */
  peer?: PeerRequest;
}

/**
 * What a sync session asked a peer for, sent with its answer so the worker that verifies the
 * entries also matches them: the ids of a POST /sync/fetch (32 bytes each, concatenated), or
 * the table (its fingerprint) and id prefix of a GET /sync/range page, with the ids under that
 * prefix refused before (not verified again).
 */
export type PeerRequest = { ids: Uint8Array } | { table: Uint8Array; prefix: string; skip?: Uint8Array };

/** Lines of a peer's answer that were not what was asked for, by offence (sync/penalties.ts). */
export interface MatchOffences {
  /** Not JSON. */
  malformed: number;
  /** Not an object with a hex id. */
  invalid: number;
  /** An id not asked for, outside the prefix, or a repeat. */
  unsolicited: number;
  /** An entry of another table than the range's. */
  wrongTable: number;
}

/** How a peer's answer matched its request. Matched entries were checked, except skipped ones. */
export interface PeerMatch {
  /** Lines that were what was asked for (whatever their checks say), skipped ones included. */
  matched: number;
  /** Of those, ids refused before: neither checked nor answered. */
  skipped: number;
  /** The matched ids, 32 bytes each, in order (what a fetch got of what it asked). */
  matchedIds: Uint8Array;
  offences: MatchOffences;
}

export interface CheckedError {
  index: number;
  id?: string;
  code: ErrorCode;
  message: string;
}

/** Offsets into `packed` for one checked entry's binary fields, in FIELDS order. */
export interface PackedEntry {
  index: number;
  version: number;
  createdAt: number;
  powValue: number;
  offsets: number[];
}

export interface CheckResult {
  count: number;
  /** Set when the body as a whole is refused (not JSON, too many entries, ...). */
  fatal?: { code: ErrorCode; message: string };
  errors: CheckedError[];
  entries: PackedEntry[];
  packed: ArrayBuffer;
  /** For a peer's answer: how it matched. Indexes of errors and entries count matched, unskipped lines. */
  peer?: PeerMatch;
}

const FIELDS = ['table', 'to', 'payload', 'signature', 'proof', 'id', 'tableFingerprint'] as const;

function fieldsOf(v: ValidEntry): Buffer[] {
  return [v.entry.table, v.entry.to, v.entry.payload, v.entry.signature, v.entry.proof, v.id, v.tableFingerprint];
}

/** One parsed item through every check; throws a P2pdbError naming the first it fails. */
export function checkItem(item: unknown, policy: EntryPolicy, keys: PublicKeyCache, now: number, urlId?: Buffer): ValidEntry {
  if (item instanceof P2pdbError) throw item;
  const { entry, claimedId } = entryFromJson(item, policy);
  if (urlId && claimedId && !urlId.equals(claimedId)) throw new P2pdbError('id_mismatch', 'id in the URL and in the body differ');
  const v = checkEntryContent(entry, policy, now, urlId ?? claimedId);
  checkEntrySignature(v, keys);
  return v;
}

/** The id an item claims, when it is well-formed, so a refusal can name the entry. */
export function claimedIdOf(item: unknown): { id?: string } {
  const claimed = (item as { id?: unknown } | null)?.id;
  return typeof claimed === 'string' && /^[0-9a-f]{64}$/.test(claimed) ? { id: claimed } : {};
}

export function checkBody(req: CheckRequest, policy: EntryPolicy, keys: PublicKeyCache): CheckResult {
  if (req.peer) return checkPeerBody(req, req.peer, policy, keys);
  const errors: CheckedError[] = [];
  const valid: { index: number; v: ValidEntry }[] = [];
  let items: unknown[];
  const raw = Buffer.from(req.raw.buffer, req.raw.byteOffset, req.raw.byteLength);
  try {
    if (req.urlId) {
      let item = parseSingle(raw, req.kind);
      if (req.kind === 'form') item = normaliseSeedFields(item as Record<string, unknown>);
      items = [item];
    } else {
      items = parseBatch(raw, req.kind, req.maxEntries, maxEntryBytes(policy.maxPayloadBytes));
    }
  } catch (e) {
    if (!isP2pdbError(e)) throw e;
    return { count: 0, fatal: e.toJSON(), errors, entries: [], packed: new ArrayBuffer(0) };
  }
  const urlId = req.urlId ? Buffer.from(req.urlId) : undefined;
  items.forEach((item, index) => {
    try {
      valid.push({ index, v: checkItem(item, policy, keys, req.now, urlId) });
    } catch (e) {
      if (!isP2pdbError(e)) throw e;
      errors.push({ index, ...claimedIdOf(item), code: e.code, message: e.message });
    }
  });
  return { count: items.length, errors, ...pack(valid) };
}

const HEX64 = /^[0-9a-f]{64}$/;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function idSet(packed: Uint8Array | undefined): Set<string> {
  const set = new Set<string>();
  if (!packed) return set;
  const buf = Buffer.from(packed.buffer, packed.byteOffset, packed.byteLength);
  for (let at = 0; at + 32 <= buf.length; at += 32) set.add(buf.toString('hex', at, at + 32));
  return set;
}

/**
 * A peer's NDJSON answer to a fetch or a range page, in one pass: each line is parsed once,
 * matched against the request (a line that is not JSON, has no hex id, was not asked for or is
 * of another table is an offence and goes no further), and a matched entry is checked in full
 * with the id and table fingerprint computed once. Lines are not bounded in number (the
 * transport bounds the bytes); one over the per-entry size is refused in its slot, as in a put.
 */
export function checkPeerBody(req: CheckRequest, peer: PeerRequest, policy: EntryPolicy, keys: PublicKeyCache): CheckResult {
  const offences: MatchOffences = { malformed: 0, invalid: 0, unsolicited: 0, wrongTable: 0 };
  const errors: CheckedError[] = [];
  const valid: { index: number; v: ValidEntry }[] = [];
  const matchedIds: Buffer[] = [];
  let skipped = 0;
  let count = 0;
  const wanted = 'ids' in peer ? idSet(peer.ids) : null;
  const range = 'table' in peer ? { table: Buffer.from(peer.table), prefix: peer.prefix, skip: idSet(peer.skip), seen: new Set<string>() } : null;
  const maxBytes = maxEntryBytes(policy.maxPayloadBytes);
  const raw = Buffer.from(req.raw.buffer, req.raw.byteOffset, req.raw.byteLength);
  for (const rawLine of raw.toString('utf8').split('\n')) {
    const text = rawLine.trim();
    if (text === '') continue;
    let item: unknown;
    try {
      item = JSON.parse(text);
    } catch {
      offences.malformed++;
      continue;
    }
    const idText = isObject(item) ? item.id : undefined;
    if (!isObject(item) || typeof idText !== 'string' || !HEX64.test(idText)) {
      offences.invalid++;
      continue;
    }
    // The id asked for (each once), or one under the range's prefix (each once per page).
    if (wanted ? !wanted.delete(idText) : !idText.startsWith(range!.prefix) || range!.seen.has(idText)) {
      offences.unsolicited++;
      continue;
    }
    range?.seen.add(idText);
    // A range's entries are of its table: the key is decoded and hashed here, once, and the
    // hash is the fingerprint the checks below use.
    let decoded: { entry: Entry; claimedId?: Buffer } | P2pdbError;
    try {
      decoded = entryFromJson(item, policy);
    } catch (e) {
      if (!isP2pdbError(e)) throw e;
      decoded = e;
    }
    let fingerprint: Buffer | undefined;
    if (range) {
      fingerprint = decoded instanceof P2pdbError ? looseFingerprint(item.table) : sha256(decoded.entry.table);
      if (!fingerprint?.equals(range.table)) {
        offences.wrongTable++;
        continue;
      }
    }
    matchedIds.push(Buffer.from(idText, 'hex'));
    if (range?.skip.has(idText)) {
      skipped++;
      continue;
    }
    const index = count++;
    try {
      if (text.length * 3 > maxBytes && Buffer.byteLength(text) > maxBytes) {
        throw new P2pdbError('payload_too_large', `an entry is ${Buffer.byteLength(text)} bytes; one entry takes at most ${maxBytes} (8 × max_payload_bytes + 64 KiB)`);
      }
      if (decoded instanceof P2pdbError) throw decoded;
      const v = checkEntryContent(decoded.entry, policy, req.now, decoded.claimedId, fingerprint);
      checkEntrySignature(v, keys);
      valid.push({ index, v });
    } catch (e) {
      if (!isP2pdbError(e)) throw e;
      errors.push({ index, id: idText, code: e.code, message: e.message });
    }
  }
  // A copy that owns its memory: a pooled Buffer would carry its whole pool to the other thread.
  const ids = new Uint8Array(Buffer.concat(matchedIds));
  return { count, errors, ...pack(valid), peer: { matched: matchedIds.length, skipped, matchedIds: ids, offences } };
}

/** The fingerprint of whatever a malformed entry's table field decodes to (null when it is no string): only to tell a wrong table from a bad entry. */
function looseFingerprint(table: unknown): Buffer | undefined {
  return typeof table === 'string' ? sha256(Buffer.from(table, 'base64')) : undefined;
}

/** Every binary field of every valid entry, packed into one buffer that owns its memory. */
function pack(valid: { index: number; v: ValidEntry }[]): { entries: PackedEntry[]; packed: ArrayBuffer } {
  let total = 0;
  for (const { v } of valid) for (const f of fieldsOf(v)) total += f.length;
  const packed = new ArrayBuffer(total);
  const bytes = new Uint8Array(packed);
  let at = 0;
  const entries: PackedEntry[] = valid.map(({ index, v }) => {
    const offsets: number[] = [];
    for (const f of fieldsOf(v)) {
      bytes.set(f, at);
      offsets.push(at);
      at += f.length;
    }
    offsets.push(at);
    return { index, version: v.entry.version, createdAt: v.entry.createdAt, powValue: v.powValue, offsets };
  });
  return { entries, packed };
}

/** The checked entries of a result as ValidEntry objects (views into the packed buffer). */
export function unpackEntries(result: CheckResult): { index: number; valid: ValidEntry }[] {
  const buf = Buffer.from(result.packed);
  return result.entries.map((p) => {
    const f = (i: number) => buf.subarray(p.offsets[i]!, p.offsets[i + 1]!);
    const fields = Object.fromEntries(FIELDS.map((name, i) => [name, f(i)])) as Record<(typeof FIELDS)[number], Buffer>;
    return {
      index: p.index,
      valid: {
        entry: {
          version: p.version,
          // An owned copy: the store may cache a table key for long, and a view would pin the whole batch.
          table: ownedCopy(fields.table),
          to: fields.to,
          createdAt: p.createdAt,
          payload: fields.payload,
          signature: fields.signature,
          proof: fields.proof,
        },
        id: fields.id,
        tableFingerprint: fields.tableFingerprint,
        powValue: p.powValue,
      },
    };
  });
}
