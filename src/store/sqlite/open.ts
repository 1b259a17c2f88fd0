/**
 * The store on SQLite (knex + sqlite3), the default: one file in the data directory, nothing
 * to set up. Three pools on the one WAL file: the single entry writer (one connection, held by
 * the group commit), query_only readers, and one connection for the peer table and sync state
 * (their writes are rare and tiny, so beside the entry writer they only ever wait a few ms,
 * which busy_timeout covers).
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import { Db } from '../db.js';
import { KeyDirectory } from '../keys.js';
import { asInternalError, KnexStore, type StoreParts } from '../store.js';
import { EntryWriter } from '../writer.js';
import { all, type Database } from './driver.js';
import { sqliteMigrationSource } from './migrations.js';
import { pragmaSql, SQLITE_PAGE_SIZE, type ConnectionSettings, type Durability } from './pragmas.js';
import { SqliteWriteConnection } from './writer.js';

export interface SqliteStoreOptions {
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
  // Measured at 1 M rows with 4 KiB pages, 200k inserts in calls of 500, 4 in flight
  // (bench/store.ts --ckpt N): 1,000 pages 12k/s, 4,000 12.7k/s, 16,000 15.5–16k/s, 64,000
  // 18–19.8k/s, 128,000 19.5k/s. Bigger intervals coalesce rewrites of the same index pages;
  // the price is a WAL of up to ~250 MiB and one commit in ~40k that copies it (~0.5 s).
  // Kept at the same ~250 MiB with 8 KiB pages (pragmas.ts).
  walAutocheckpointPages: Math.round((256 * 1024 * 1024) / SQLITE_PAGE_SIZE),
  maxBatchEntries: 2000,
  readConnections: 2,
  busyTimeoutMs: 5000,
};

type AfterCreate = (conn: Database, done: (err: Error | null, conn: Database) => void) => void;

function afterCreate(settings: ConnectionSettings): AfterCreate {
  return (conn, done) => conn.exec(pragmaSql(settings), (err) => done(err, conn));
}

/** The SQLite store, with SQLite's own diagnostics. */
export class SqliteStore extends KnexStore {
  constructor(
    parts: StoreParts,
    private readonly writeConn: Database,
  ) {
    super(parts);
  }

  /** The file's page size in bytes (fixed when the file was created). */
  async pageSize(): Promise<number> {
    const [row] = await this.parts.read.rows<{ page_size: number }>('PRAGMA page_size');
    return row!.page_size;
  }

  /** Effective pragmas of the writer connection and of a reader (diagnostics and tests). */
  async pragmas(): Promise<{ writer: Record<string, unknown>; reader: Record<string, unknown> }> {
    const names = ['journal_mode', 'synchronous', 'foreign_keys', 'busy_timeout', 'cache_size', 'wal_autocheckpoint', 'query_only'];
    const writer: Record<string, unknown> = {};
    const reader: Record<string, unknown> = {};
    for (const name of names) {
      const [w] = await all<Record<string, unknown>>(this.writeConn, `PRAGMA ${name}`);
      const [r] = await this.parts.read.rows<Record<string, unknown>>(`PRAGMA ${name}`);
      writer[name] = w && Object.values(w)[0];
      reader[name] = r && Object.values(r)[0];
    }
    return { writer, reader };
  }
}

export async function openSqliteStore(opts: SqliteStoreOptions): Promise<SqliteStore> {
  const filename = path.resolve(opts.filename);
  await mkdir(path.dirname(filename), { recursive: true, mode: 0o700 });
  const base = {
    durability: opts.durability ?? STORE_DEFAULTS.durability,
    cacheMiB: opts.cacheMiB ?? STORE_DEFAULTS.cacheMiB,
    walAutocheckpointPages: opts.walAutocheckpointPages ?? STORE_DEFAULTS.walAutocheckpointPages,
    busyTimeoutMs: STORE_DEFAULTS.busyTimeoutMs,
  };
  const connect = (settings: ConnectionSettings, max: number): Knex =>
    knexFactory({
      client: 'sqlite3',
      connection: { filename },
      useNullAsDefault: true,
      pool: { min: 1, max, afterCreate: afterCreate(settings) },
    });

  // One connection writes entries (SQLite has one writer); it runs the migrations, then is held.
  const writeKnex = connect({ ...base, role: 'writer' }, 1);
  const opened: Knex[] = [writeKnex];
  try {
    await writeKnex.migrate.latest({ migrationSource: sqliteMigrationSource });
    const writeConn = (await writeKnex.client.acquireConnection()) as Database;
    const readKnex = connect({ ...base, role: 'reader' }, Math.max(1, opts.readConnections ?? STORE_DEFAULTS.readConnections));
    opened.push(readKnex);
    // Peers and sync state are soft state: losing the last update on power loss is harmless.
    const smallKnex = connect({ ...base, role: 'writer', durability: 'normal', cacheMiB: 2 }, 1);
    opened.push(smallKnex);
    const keys = new KeyDirectory();
    return new SqliteStore(
      {
        backend: 'sqlite',
        read: new Db(readKnex, 'sqlite'),
        small: new Db(smallKnex, 'sqlite'),
        writer: new EntryWriter(new SqliteWriteConnection(writeConn), keys, opts.clock ?? Date.now),
        keys,
        maxBatchEntries: opts.maxBatchEntries ?? STORE_DEFAULTS.maxBatchEntries,
        storeError: asInternalError,
        closeConnections: async () => {
          await smallKnex.destroy();
          await readKnex.destroy();
          // Released last: closing the last connection checkpoints the WAL into the file.
          writeKnex.client.releaseConnection(writeConn);
          await writeKnex.destroy();
        },
      },
      writeConn,
    );
  } catch (err) {
    for (const k of opened.reverse()) await k.destroy().catch(() => undefined);
    throw asInternalError(err, `cannot open the store ${filename}`);
  }
}
