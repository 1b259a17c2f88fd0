/**
 * A request body in, checked entries out: parsing, seed compatibility and every check of
 * validate.ts. Pure apart from the key cache, so it runs the same inline or in a worker.
 * Checked entries come back packed into one buffer (with offsets), so a worker can hand them
 * over without copying.
 */
import type { PublicKeyCache } from '../crypto/keys.js';
import { isP2pdbError, P2pdbError, type ErrorCode } from '../errors.js';
import type { EntryPolicy, ValidEntry } from '../entry/validate.js';
import { checkEntryContent, checkEntrySignature } from '../entry/validate.js';
import { entryFromJson } from '../entry/wire.js';
import { maxEntryBytes, parseBatch, parseSingle, type BodyKind } from './parse-body.js';
import { normaliseSeedFields } from './seed-compat.js';
import { ownedCopy } from '../util/bytes.js';

export interface CheckRequest {
  raw: Uint8Array;
  kind: BodyKind;
  /** Set for /put/:id: the body is one entry whose id must be this. */
  urlId?: Uint8Array;
  maxEntries: number;
  now: number;
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
  // Pack every binary field of every valid entry into one buffer that owns its memory.
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
  return { count: items.length, errors, entries, packed };
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
