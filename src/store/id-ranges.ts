/**
 * Id queries for sync (src/sync): the ids of one table inside an id range [lo, hi), pages of
 * (seq, table, id) in seq order for building the in-memory index, and counts at one consistent
 * point. Read-only, on the store's read connections.
 *
 * A range is read through one of two indexes, whichever reads fewer rows: the unique id index
 * (every table's ids in the range; each row is then checked for its table) or the (table_id,
 * seq) index (every id of the table, checked for the range). The caller passes its estimates,
 * so reading a node costs min(ids of all tables in the range, ids of the table), never more.
 */
import { fail } from '../errors.js';
import type { Db } from './db.js';

export type RangePlan = 'by-id' | 'by-table';

/** Rows per page of walkIds: big enough that per-statement costs vanish, small enough to stay responsive. */
const WALK_PAGE = 50_000;

export interface SeqRow {
  seq: number;
  table: Buffer;
  id: Buffer;
}

export class IdRanges {
  private readonly tableIds = new Map<string, number>();
  private fingerprints = new Map<number, Buffer>();

  constructor(private readonly db: Db) {}

  /** table_keys.id of a fingerprint; undefined while the store has never seen the table. */
  async tableId(fingerprint: Buffer): Promise<number | undefined> {
    const k = fingerprint.toString('latin1');
    const known = this.tableIds.get(k);
    if (known !== undefined) return known;
    const [row] = await this.db.rows<{ id: number }>('SELECT id FROM table_keys WHERE fingerprint = ?', [fingerprint]);
    if (row) this.tableIds.set(k, row.id); // rows are never deleted, so a hit is final
    return row?.id;
  }

  /**
   * Ids of a table with lo <= id < hi (hi null: no upper bound), ascending, after `afterId`
   * when given (a resumable cursor), at most `limit` (-1: no limit).
   */
  async idsInRange(
    fingerprint: Buffer,
    lo: Buffer,
    hi: Buffer | null,
    o: { limit?: number; afterId?: Buffer; plan?: RangePlan } = {},
  ): Promise<Buffer[]> {
    const tableId = await this.tableId(fingerprint);
    if (tableId === undefined) return [];
    const params: unknown[] = [];
    const where: string[] = [];
    if (o.afterId && Buffer.compare(o.afterId, lo) >= 0) {
      where.push('id > ?');
      params.push(o.afterId);
    } else {
      where.push('id >= ?');
      params.push(lo);
    }
    if (hi) {
      where.push('id < ?');
      params.push(hi);
    }
    where.push('table_id = ?');
    params.push(tableId);
    const index = o.plan === 'by-table' ? 'entries_table' : 'entries_id';
    const rows = await this.db.rows<{ id: Buffer }>(
      `SELECT id FROM entries${this.db.indexed(index)} WHERE ${where.join(' AND ')} ORDER BY id${this.db.limit(o.limit ?? -1)}`,
      params,
    );
    return rows.map((r) => r.id);
  }

  /** Entries with seq > afterSeq (and <= upTo when given), in seq order: the index's rebuild and catch-up. */
  async pageBySeq(afterSeq: number, limit: number, upTo?: number): Promise<SeqRow[]> {
    const rows = await this.db.rows<{ seq: number; id: Buffer; table_id: number }>(
      `SELECT seq, id, table_id FROM entries WHERE seq > ?${upTo === undefined ? '' : ' AND seq <= ?'} ORDER BY seq LIMIT ?`,
      upTo === undefined ? [afterSeq, limit] : [afterSeq, upTo, limit],
    );
    const out: SeqRow[] = [];
    for (const r of rows) {
      let table = this.fingerprints.get(r.table_id);
      if (!table) {
        await this.loadFingerprints();
        table = this.fingerprints.get(r.table_id);
        if (!table) fail('internal', `entry ${r.seq} refers to an unknown table_id ${r.table_id}`);
      }
      out.push({ seq: r.seq, table, id: r.id });
    }
    return out;
  }

  /**
   * Every (table, id) stored at seq <= upTo, from two index walks instead of the rows (which are
   * ~1.4 KB each: a row scan reads 30 times the bytes). The table index (table_id, seq) gives
   * each seq's table, kept in a typed array indexed by seq (2 or 4 bytes per entry, released at
   * the end); the id index (id, seq) then gives every id with its seq. Rows at or below upTo
   * never change, so pages need no common transaction. `stop()` is asked between pages.
   */
  async walkIds(upTo: number, add: (table: Buffer, id: Buffer) => void, stop: () => boolean = () => false): Promise<void> {
    if (upTo <= 0) return;
    await this.loadFingerprints();
    let maxTableId = 0;
    for (const id of this.fingerprints.keys()) maxTableId = Math.max(maxTableId, id);
    const tableOf = maxTableId < 0xffff ? new Uint16Array(upTo + 1) : new Uint32Array(upTo + 1);
    for (const tableId of this.fingerprints.keys()) {
      for (let after = 0; ; ) {
        if (stop()) return;
        const rows = await this.db.rows<{ seq: number }>(
          `SELECT seq FROM entries${this.db.indexed('entries_table')} WHERE table_id = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ${WALK_PAGE}`,
          [tableId, after, upTo],
        );
        for (const r of rows) tableOf[r.seq] = tableId;
        if (rows.length < WALK_PAGE) break;
        after = rows[rows.length - 1]!.seq;
      }
    }
    let after: Buffer | null = null;
    for (;;) {
      if (stop()) return;
      const rows: { id: Buffer; seq: number }[] = await this.db.rows<{ id: Buffer; seq: number }>(
        `SELECT id, seq FROM entries${this.db.indexed('entries_id')} WHERE ${after ? 'id > ? AND ' : ''}seq <= ? ORDER BY id LIMIT ${WALK_PAGE}`,
        after ? [after, upTo] : [upTo],
      );
      for (const r of rows) {
        const table = this.fingerprints.get(tableOf[r.seq]!);
        if (!table) fail('internal', `entry ${r.seq} has no table in the table index`);
        add(table, r.id);
      }
      if (rows.length < WALK_PAGE) return;
      after = rows[rows.length - 1]!.id;
    }
  }

  /** Per-table counts and the last seq, read in one statement so they describe the same moment. */
  async countsAt(): Promise<{ lastSeq: number; counts: Map<string, number> }> {
    const rows = await this.db.rows<{ fingerprint: Buffer; entry_count: number; last: number | null }>(
      'SELECT fingerprint, entry_count, (SELECT max(seq) FROM entries) AS last FROM table_keys WHERE entry_count > 0',
    );
    const counts = new Map<string, number>();
    for (const r of rows) counts.set(r.fingerprint.toString('latin1'), r.entry_count);
    // No table with entries means no entries: the store never deletes.
    return { lastSeq: rows[0]?.last ?? 0, counts };
  }

  private async loadFingerprints(): Promise<void> {
    const rows = await this.db.rows<{ id: number; fingerprint: Buffer }>('SELECT id, fingerprint FROM table_keys');
    this.fingerprints = new Map(rows.map((r) => [r.id, r.fingerprint]));
  }
}
