/**
 * One side of `p2pdb db copy`: a database opened for bulk reads or bulk writes of the store's
 * tables as rows, with their seqs, table ids and times kept as they are (the store's own
 * interface re-stamps received_at and hands out new seqs, so it cannot copy).
 *
 * The SQL here is plain and runs on both databases; what differs (how the database is held
 * exclusively, the bulk INSERT, placeholders) sits behind CopyConnection (sqlite.ts,
 * postgres.ts). Every write is one transaction that leaves the target consistent: the entries
 * of a batch together with the counters and received_seconds rows that describe them, so an
 * interrupted copy leaves a smaller but valid store, and the next run continues from its tail.
 */
import type { Dialect } from '../db.js';
import { ENTRY_COLUMNS, type EntryRow } from '../rows.js';

export { ENTRY_COLUMNS, type EntryRow };

export interface TableKeyRow {
  id: number;
  fingerprint: Buffer;
  spki: Buffer;
  entry_count: number;
}

export interface SecondRow {
  second: number;
  first_seq: number;
}

/** (seq, table_id, id): what verification walks. */
export interface IdRow {
  seq: number;
  table_id: number;
  id: Buffer;
}

/**
 * Tables copied whole at the end (small: ~1,000 peers at most), with the columns both schemas
 * share. SQLite's peers keeps two unused columns from before 0004 (penalty, banned_until):
 * they are not copied; sync_penalties holds that state now.
 */
export const SMALL_TABLES = {
  peers: { key: ['onion'], columns: ['onion', 'tables', 'pow_bits', 'protocol', 'software', 'first_seen', 'last_seen', 'last_attempt', 'next_attempt', 'failures', 'source', 'verified'] },
  sync_penalties: { key: ['peer'], columns: ['peer', 'penalty', 'banned_until'] },
  sync_cursors: { key: ['peer', 'table_fp', 'prefix'], columns: ['peer', 'table_fp', 'prefix', 'cursor', 'claimed', 'fetched', 'updated_at'] },
} as const;

export type SmallTable = keyof typeof SMALL_TABLES;
export type Row = Record<string, unknown>;
export type SmallTables = Record<SmallTable, Row[]>;

/** A held connection to one database, with its dialect's fast paths. */
export interface CopyConnection {
  readonly dialect: Dialect;
  /** The database without secrets, for messages. */
  readonly label: string;
  rows<T>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  run(sql: string, params?: readonly unknown[]): Promise<void>;
  /** Runs fn in one transaction; commits, or rolls back and rethrows. */
  transaction<T>(fn: () => Promise<T>): Promise<T>;
  /** Multi-row INSERTs of rows (values in `columns` order), inside the caller's transaction. */
  insertRows(table: string, columns: readonly string[], rows: readonly unknown[][]): Promise<void>;
  /** After the last batch: what the database needs to be the node's store again (sequences, checkpoint). */
  finish(): Promise<void>;
  close(): Promise<void>;
}

export class CopyEndpoint {
  constructor(readonly conn: CopyConnection) {}

  get dialect(): Dialect {
    return this.conn.dialect;
  }

  get label(): string {
    return this.conn.label;
  }

  async lastSeq(): Promise<number> {
    const [row] = await this.conn.rows<{ seq: number | null }>('SELECT max(seq) AS seq FROM entries');
    return row?.seq ?? 0;
  }

  /** The entry_totals counter (kept in every insert transaction). */
  async entryTotal(): Promise<number> {
    const [row] = await this.conn.rows<{ entries: number }>('SELECT entries FROM entry_totals WHERE id = 1');
    return row?.entries ?? 0;
  }

  /** Entries with seq <= upTo, counted (a range scan of the primary key). */
  async countUpTo(upTo: number): Promise<number> {
    const [row] = await this.conn.rows<{ n: number | string }>('SELECT count(*) AS n FROM entries WHERE seq <= ?', [upTo]);
    return Number(row?.n ?? 0);
  }

  /** Entries with seq > afterSeq, ascending, at most limit. */
  readEntries(afterSeq: number, limit: number): Promise<EntryRow[]> {
    return this.conn.rows<EntryRow>(`SELECT ${ENTRY_COLUMNS.join(', ')} FROM entries WHERE seq > ? ORDER BY seq LIMIT ?`, [afterSeq, limit]);
  }

  /** The entries at these seqs (those that exist), ascending. */
  entriesAt(seqs: readonly number[]): Promise<EntryRow[]> {
    if (seqs.length === 0) return Promise.resolve([]);
    return this.conn.rows<EntryRow>(`SELECT ${ENTRY_COLUMNS.join(', ')} FROM entries WHERE seq IN (${seqs.map(() => '?').join(',')}) ORDER BY seq`, [...seqs]);
  }

  /**
   * (seq, table_id, id) after afterSeq, ascending: the verification walk. The database spells
   * the id in hex itself, so the check does not share the driver's blob decoding with the copy
   * it checks (a decoding bug there once corrupted both sides alike; see postgres.ts).
   */
  async idWalk(afterSeq: number, limit: number): Promise<IdRow[]> {
    const hex = this.dialect === 'postgres' ? "encode(id, 'hex')" : 'hex(id)';
    const rows = await this.conn.rows<{ seq: number; table_id: number; id_hex: string }>(
      `SELECT seq, table_id, ${hex} AS id_hex FROM entries WHERE seq > ? ORDER BY seq LIMIT ?`,
      [afterSeq, limit],
    );
    return rows.map((r) => ({ seq: r.seq, table_id: r.table_id, id: Buffer.from(r.id_hex, 'hex') }));
  }

  tableKeys(): Promise<TableKeyRow[]> {
    return this.conn.rows<TableKeyRow>('SELECT id, fingerprint, spki, entry_count FROM table_keys ORDER BY id');
  }

  /** received_seconds rows of the seconds lo..hi (its primary key). */
  receivedSeconds(lo: number, hi: number): Promise<SecondRow[]> {
    return this.conn.rows<SecondRow>('SELECT second, first_seq FROM received_seconds WHERE second >= ? AND second <= ? ORDER BY second', [lo, hi]);
  }

  async receivedSecondsSummary(): Promise<{ rows: number; lastSecond: number; lastFirstSeq: number }> {
    const [row] = await this.conn.rows<{ n: number | string; s: number | null; f: number | null }>(
      'SELECT count(*) AS n, max(second) AS s, max(first_seq) AS f FROM received_seconds',
    );
    return { rows: Number(row?.n ?? 0), lastSecond: row?.s ?? 0, lastFirstSeq: row?.f ?? 0 };
  }

  /** Peers and sync state, each table in key order. */
  async smallTables(): Promise<SmallTables> {
    const out = {} as SmallTables;
    for (const [table, spec] of Object.entries(SMALL_TABLES) as [SmallTable, (typeof SMALL_TABLES)[SmallTable]][]) {
      out[table] = await this.conn.rows<Row>(`SELECT ${spec.columns.join(', ')} FROM ${table} ORDER BY ${spec.key.join(', ')}`);
    }
    return out;
  }

  /** Table keys the target lacks, with entry_count 0: the batches count their entries in. */
  async addTableKeys(rows: readonly TableKeyRow[]): Promise<void> {
    if (rows.length === 0) return;
    await this.conn.transaction(() =>
      this.conn.insertRows(
        'table_keys',
        ['id', 'fingerprint', 'spki', 'entry_count'],
        rows.map((r) => [r.id, r.fingerprint, r.spki, 0]),
      ),
    );
  }

  /**
   * One batch, in one transaction: the entries as they are, their tables' counters and the
   * total, and the received_seconds rows that start inside the batch.
   */
  async writeBatch(entries: readonly EntryRow[], seconds: readonly SecondRow[]): Promise<void> {
    if (entries.length === 0) return;
    const perTable = new Map<number, number>();
    for (const e of entries) perTable.set(e.table_id, (perTable.get(e.table_id) ?? 0) + 1);
    await this.conn.transaction(async () => {
      await this.conn.insertRows(
        'entries',
        ENTRY_COLUMNS,
        entries.map((e) => ENTRY_COLUMNS.map((c) => e[c])),
      );
      for (const [tableId, n] of perTable) await this.conn.run('UPDATE table_keys SET entry_count = entry_count + ? WHERE id = ?', [n, tableId]);
      await this.conn.run('UPDATE entry_totals SET entries = entries + ? WHERE id = 1', [entries.length]);
      if (seconds.length > 0) await this.conn.insertRows('received_seconds', ['second', 'first_seq'], seconds.map((s) => [s.second, s.first_seq]));
    });
  }

  /** Replaces the target's peers and sync state with the source's, in one transaction. */
  async replaceSmallTables(tables: SmallTables): Promise<void> {
    await this.conn.transaction(async () => {
      for (const [table, spec] of Object.entries(SMALL_TABLES) as [SmallTable, (typeof SMALL_TABLES)[SmallTable]][]) {
        await this.conn.run(`DELETE FROM ${table}`);
        const rows = tables[table];
        if (rows.length > 0) await this.conn.insertRows(table, spec.columns, rows.map((r) => spec.columns.map((c) => r[c])));
      }
    });
  }

  finish(): Promise<void> {
    return this.conn.finish();
  }

  close(): Promise<void> {
    return this.conn.close();
  }
}
