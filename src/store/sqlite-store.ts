/**
 * The entry store on SQLite (knex + sqlite3): opens the file, migrates it, and wires the
 * single writer (group commit on one held connection) and the reader pool together.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import type { ValidEntry } from '../entry/validate.js';
import { isP2pdbError, P2pdbError } from '../errors.js';
import { GroupCommit } from './group-commit.js';
import { KeyDirectory } from './keys.js';
import { migrationSource } from './migrations.js';
import { pragmaSql, type ConnectionSettings, type Durability } from './pragmas.js';
import { EntryReader } from './reader.js';
import { all, type Database } from './sqlite.js';
import type { EntryFilter, EntryPage, EntryStore, InsertOutcome, StoredListener, StoredNotice, TableCount } from './types.js';
import { EntryWriter } from './writer.js';

export interface StoreOptions {
  filename: string;
  /** 'full' (default): fsync at every commit. 'normal': survives crashes, not power loss. */
  durability?: Durability;
  /** Page cache per connection, MiB (default 256). */
  cacheMiB?: number;
  /** Tuning knobs with measured defaults; benchmarks and tests override them. */
  walAutocheckpointPages?: number;
  /** Most entries per group-commit transaction (a single larger insert() call still commits whole). */
  maxBatchEntries?: number;
  readConnections?: number;
  /** Source of received_at (ms); injectable so tests can control time. */
  clock?: () => number;
}

export const STORE_DEFAULTS = {
  durability: 'full' as Durability,
  cacheMiB: 256,
  // Measured at 1 M rows, 200k inserts in calls of 500, 4 in flight (bench/store.ts --ckpt N):
  // 1,000 pages 12k/s, 4,000 12.7k/s, 16,000 15.5–16k/s, 64,000 18–19.8k/s, 128,000 19.5k/s.
  // Bigger intervals coalesce rewrites of the same index pages; the price is a WAL of up to
  // ~250 MiB and one commit in ~40k that copies it (~0.5 s at 64,000 pages).
  walAutocheckpointPages: 64_000,
  maxBatchEntries: 2000,
  readConnections: 2,
  busyTimeoutMs: 5000,
};

type AfterCreate = (conn: Database, done: (err: Error | null, conn: Database) => void) => void;

function afterCreate(settings: ConnectionSettings): AfterCreate {
  return (conn, done) => conn.exec(pragmaSql(settings), (err) => done(err, conn));
}

function asStoreError(err: unknown, what: string): P2pdbError {
  if (isP2pdbError(err)) return err;
  const message = err instanceof Error ? err.message : String(err);
  return Object.assign(new P2pdbError('internal', `${what}: ${message}`), { cause: err });
}

export class SqliteEntryStore implements EntryStore {
  private closing: Promise<void> | null = null;
  private readonly listeners = new Set<StoredListener>();

  constructor(
    private readonly writeKnex: Knex,
    private readonly writeConn: Database,
    /** Read-only connections, for query modules beside this one in src/store (sync ranges, index builds). */
    readonly readKnex: Knex,
    private readonly writer: EntryWriter,
    private readonly reader: EntryReader,
    private readonly queue: GroupCommit<ValidEntry, InsertOutcome>,
  ) {}

  async insert(entries: ValidEntry[]): Promise<InsertOutcome[]> {
    if (this.closing) throw new P2pdbError('internal', 'the store is closed');
    if (entries.length === 0) return [];
    return this.queue.submit(entries);
  }

  onStored(listener: StoredListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Registered onStored listeners (tests check that subscriptions do not leak them). */
  get listenerCount(): number {
    return this.listeners.size;
  }

  /** Called by the commit loop after a commit, before the inserting callers are answered. */
  notifyStored(stored: StoredNotice[]): void {
    if (stored.length === 0) return;
    for (const listener of this.listeners) {
      try {
        listener(stored);
      } catch {
        // A listener's failure must not fail a commit that has already happened.
      }
    }
  }

  async lastSeq(): Promise<number> {
    const [row] = await this.readKnex.raw<{ seq: number | null }[]>('SELECT max(seq) AS seq FROM entries');
    return row?.seq ?? 0;
  }

  query(filter: EntryFilter): Promise<EntryPage> {
    return this.reader.query(filter);
  }

  /** EXPLAIN QUERY PLAN lines of the statements query(filter) runs (diagnostics and tests). */
  explain(filter: EntryFilter): Promise<string[]> {
    return this.reader.explain(filter);
  }

  async count(): Promise<number> {
    const [row] = await this.readKnex.raw<{ entries: number }[]>('SELECT entries FROM entry_totals WHERE id = 1');
    return row?.entries ?? 0;
  }

  async countByTable(): Promise<TableCount[]> {
    return this.readKnex.raw<TableCount[]>(
      'SELECT fingerprint, entry_count AS count FROM table_keys WHERE entry_count > 0 ORDER BY id',
    );
  }

  /** Effective pragmas of the writer connection and of a reader (diagnostics and tests). */
  async pragmas(): Promise<{ writer: Record<string, unknown>; reader: Record<string, unknown> }> {
    const names = ['journal_mode', 'synchronous', 'foreign_keys', 'busy_timeout', 'cache_size', 'wal_autocheckpoint', 'query_only'];
    const writer: Record<string, unknown> = {};
    const reader: Record<string, unknown> = {};
    for (const name of names) {
      const [w] = await all<Record<string, unknown>>(this.writeConn, `PRAGMA ${name}`);
      const [r] = await this.readKnex.raw<Record<string, unknown>[]>(`PRAGMA ${name}`);
      writer[name] = w && Object.values(w)[0];
      reader[name] = r && Object.values(r)[0];
    }
    return { writer, reader };
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.queue.idle();
      await this.writer.close();
      await this.readKnex.destroy();
      // Released last: closing the last connection checkpoints the WAL into the file.
      this.writeKnex.client.releaseConnection(this.writeConn);
      await this.writeKnex.destroy();
    })();
    return this.closing;
  }
}

export async function openStore(opts: StoreOptions): Promise<SqliteEntryStore> {
  const filename = path.resolve(opts.filename);
  await mkdir(path.dirname(filename), { recursive: true });
  const base = {
    durability: opts.durability ?? STORE_DEFAULTS.durability,
    cacheMiB: opts.cacheMiB ?? STORE_DEFAULTS.cacheMiB,
    walAutocheckpointPages: opts.walAutocheckpointPages ?? STORE_DEFAULTS.walAutocheckpointPages,
    busyTimeoutMs: STORE_DEFAULTS.busyTimeoutMs,
  };
  const connect = (role: ConnectionSettings['role'], max: number): Knex =>
    knexFactory({
      client: 'sqlite3',
      connection: { filename },
      useNullAsDefault: true,
      pool: { min: 1, max, afterCreate: afterCreate({ ...base, role }) },
    });

  // One connection writes (SQLite has one writer); it runs the migrations, then is held.
  const writeKnex = connect('writer', 1);
  let readKnex: Knex | undefined;
  try {
    await writeKnex.migrate.latest({ migrationSource });
    const writeConn = (await writeKnex.client.acquireConnection()) as Database;
    readKnex = connect('reader', Math.max(1, opts.readConnections ?? STORE_DEFAULTS.readConnections));
    const keys = new KeyDirectory();
    const writer = new EntryWriter({ db: writeConn, keys, clock: opts.clock ?? Date.now });
    const reader = new EntryReader(readKnex, keys);
    let store: SqliteEntryStore | undefined;
    const queue = new GroupCommit<ValidEntry, InsertOutcome>(
      async (calls) => {
        const committed: StoredNotice[] = [];
        let outcomes: InsertOutcome[][];
        try {
          outcomes = await writer.write(calls, committed);
        } catch (err) {
          throw asStoreError(err, 'store write failed');
        }
        store?.notifyStored(committed);
        return outcomes;
      },
      opts.maxBatchEntries ?? STORE_DEFAULTS.maxBatchEntries,
    );
    store = new SqliteEntryStore(writeKnex, writeConn, readKnex, writer, reader, queue);
    return store;
  } catch (err) {
    await readKnex?.destroy();
    await writeKnex.destroy();
    throw asStoreError(err, `cannot open the store ${filename}`);
  }
}
