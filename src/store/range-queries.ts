/**
 * Queries behind the sync transport's pull routes (GET /sync/range, POST /sync/fetch), over
 * the store's read connections. Each is one indexed statement:
 *
 * - a whole table (prefix ''), in seq order through entries_table, i.e. (table_id, seq): an
 *   empty node bootstrapping streams a table without any sort, and the cursor (the last seq)
 *   survives new entries arriving meanwhile (they come last);
 * - an id prefix of a table, in id order through the unique id index: the id range
 *   [prefix000…, prefix+1 000…) bounds the index scan, table_id is checked on the rows;
 * - a list of ids, through the id index.
 *
 * The table's SPKI is read once per call (every entry of a page shares it).
 */
import type { Entry } from '../entry/types.js';
import { fail } from '../errors.js';
import { placeholders, type Db } from './db.js';

/** A page holds at most this many entries, whatever the caller asks. */
export const MAX_RANGE_LIMIT = 2000;
/** And stops growing past about this many payload bytes (a page of 64 KiB payloads stays bounded). */
export const MAX_RANGE_PAGE_BYTES = 16 * 1024 * 1024;
export const MAX_FETCH_IDS = 2000;

const PREFIX_RE = /^[0-9a-f]{0,64}$/;

export interface RangeEntry {
  seq: number;
  id: Buffer;
  entry: Entry;
}

export interface RangePage {
  entries: RangeEntry[];
  /** Cursor to continue after the last entry when more may follow, else null. */
  next: string | null;
}

interface Row {
  seq: number;
  id: Buffer;
  recipient: Buffer;
  created_at: number;
  version: number;
  payload: Buffer;
  signature: Buffer;
  proof: Buffer;
}

const COLUMNS = 'seq, id, recipient, created_at, version, payload, signature, proof';

/** A prefix of hex nibbles ('' = the whole table); throws bad_request otherwise. */
export function checkPrefix(prefix: string): string {
  if (!PREFIX_RE.test(prefix)) fail('bad_request', 'prefix must be 0 to 64 lower-case hex digits');
  return prefix;
}

/** The 32-byte bounds of the ids under a prefix: [lo, hi), hi null when the prefix is all f. */
export function prefixBounds(prefix: string): { lo: Buffer; hi: Buffer | null } {
  checkPrefix(prefix);
  const lo = Buffer.from(prefix.padEnd(64, '0'), 'hex');
  if (/^f*$/.test(prefix)) return { lo, hi: null };
  // prefix + 1 in hex: strip trailing f's, increment the last nibble.
  const stripped = prefix.replace(/f+$/, '');
  const last = parseInt(stripped[stripped.length - 1]!, 16) + 1;
  const up = stripped.slice(0, -1) + last.toString(16);
  return { lo, hi: Buffer.from(up.padEnd(64, '0'), 'hex') };
}

/**
 * Cursors are opaque to the peer: "s<seq>" for a whole-table pull, "i<id hex>" for a prefix
 * pull. Parsed strictly (bad_request), since they come from the network.
 */
export type RangeCursor = { seq: number } | { id: Buffer };

export function parseCursor(prefix: string, text: string | undefined): RangeCursor | null {
  if (text === undefined || text === '') return null;
  if (prefix === '') {
    const m = /^s(\d{1,16})$/.exec(text);
    if (!m || !Number.isSafeInteger(Number(m[1]))) fail('bad_request', 'after must be the cursor a previous page returned');
    return { seq: Number(m[1]) };
  }
  const m = /^i([0-9a-f]{64})$/.exec(text);
  if (!m) fail('bad_request', 'after must be the cursor a previous page returned');
  return { id: Buffer.from(m[1]!, 'hex') };
}

function cursorOf(prefix: string, last: RangeEntry): string {
  return prefix === '' ? `s${last.seq}` : `i${last.id.toString('hex')}`;
}

export class RangeQueries {
  constructor(private readonly db: Db) {}

  private async tableKey(fingerprint: Buffer): Promise<{ id: number; spki: Buffer } | undefined> {
    const [row] = await this.db.rows<{ id: number; spki: Buffer }>('SELECT id, spki FROM table_keys WHERE fingerprint = ?', [fingerprint]);
    return row;
  }

  /** One page of a table's entries under an id prefix, after a cursor. */
  async rangePage(q: { table: Buffer; prefix: string; after: RangeCursor | null; limit: number }): Promise<RangePage> {
    checkPrefix(q.prefix);
    const limit = Math.max(1, Math.min(MAX_RANGE_LIMIT, Math.floor(q.limit)));
    const key = await this.tableKey(q.table);
    if (!key) return { entries: [], next: null };
    let rows: Row[];
    if (q.prefix === '') {
      const after = q.after && 'seq' in q.after ? q.after.seq : 0;
      rows = await this.db.rows<Row>(
        `SELECT ${COLUMNS} FROM entries${this.db.indexed('entries_table')} WHERE table_id = ? AND seq > ? ORDER BY seq LIMIT ?`,
        [key.id, after, limit],
      );
    } else {
      const { lo, hi } = prefixBounds(q.prefix);
      const after = q.after && 'id' in q.after ? q.after.id : null;
      const where = [after && after.compare(lo) >= 0 ? 'id > ?' : 'id >= ?'];
      const params: unknown[] = [after && after.compare(lo) >= 0 ? after : lo];
      if (hi) {
        where.push('id < ?');
        params.push(hi);
      }
      where.push('table_id = ?');
      params.push(key.id, limit);
      rows = await this.db.rows<Row>(`SELECT ${COLUMNS} FROM entries${this.db.indexed('entries_id')} WHERE ${where.join(' AND ')} ORDER BY id LIMIT ?`, params);
    }
    const entries: RangeEntry[] = [];
    let bytes = 0;
    for (const r of rows) {
      entries.push(toRangeEntry(r, key.spki));
      bytes += r.payload.length + r.signature.length + 200;
      if (bytes >= MAX_RANGE_PAGE_BYTES) break;
    }
    const last = entries[entries.length - 1];
    const full = entries.length < rows.length || rows.length === limit;
    return { entries, next: last && full ? cursorOf(q.prefix, last) : null };
  }

  /** The entries among `ids` this store holds (any table), in id order, bounded by MAX_RANGE_PAGE_BYTES. */
  async byIds(ids: Buffer[]): Promise<RangeEntry[]> {
    if (ids.length === 0) return [];
    if (ids.length > MAX_FETCH_IDS) fail('batch_too_large', `a fetch names at most ${MAX_FETCH_IDS} ids`);
    const rows = await this.db.rows<Row & { spki: Buffer }>(
      `SELECT ${COLUMNS.split(', ').map((c) => `e.${c}`).join(', ')}, k.spki AS spki
         FROM entries e${this.db.indexed('entries_id')} JOIN table_keys k ON k.id = e.table_id
        WHERE e.id IN (${placeholders(ids.length)}) ORDER BY e.id`,
      ids,
    );
    const out: RangeEntry[] = [];
    let bytes = 0;
    for (const r of rows) {
      out.push(toRangeEntry(r, r.spki));
      bytes += r.payload.length + r.signature.length + 200;
      if (bytes >= MAX_RANGE_PAGE_BYTES) break;
    }
    return out;
  }
}

function toRangeEntry(r: Row, spki: Buffer): RangeEntry {
  return {
    seq: r.seq,
    id: r.id,
    entry: {
      version: r.version,
      table: spki,
      to: r.recipient,
      createdAt: r.created_at,
      payload: r.payload,
      signature: r.signature,
      proof: r.proof,
    },
  };
}
