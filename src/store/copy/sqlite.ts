/**
 * A SQLite file held for `p2pdb db copy`: one connection in locking_mode EXCLUSIVE.
 *
 * Why that is the running-node check: every connection to a WAL database keeps a shared lock
 * on the file for as long as it is open (that is how the last one to close knows it may
 * checkpoint and delete the WAL), and a running node always has connections open (its writer
 * is held for the store's lifetime). An exclusive lock is therefore refused (SQLITE_BUSY, no
 * waiting) while any node, or any other process or connection, has the file open; and once
 * taken it is held until the copy closes, so no node can start on either file mid-copy (its
 * open fails after busy_timeout). The kernel drops the lock when a process dies, so a node
 * killed with -9 does not leave a stale one behind, unlike a pid file.
 *
 * The same one connection runs the migrations (knex, pool of one), then is held for reads
 * and prepared multi-row INSERTs. synchronous = NORMAL: a crash mid-copy loses at most the
 * last batches, never consistency, and the next run continues from what is there; finish()
 * checkpoints the WAL into the file.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import { P2pdbError } from '../../errors.js';
import { all, finalize, prepare, run, runStatement, type Database, type Statement } from '../sqlite/driver.js';
import { sqliteMigrationSource } from '../sqlite/migrations.js';
import type { CopyConnection } from './endpoint.js';

/** Rows per prepared INSERT at most; smaller ones are halves, so few statements are prepared. */
const MAX_CHUNK_ROWS = 512;
/** SQLite's limit on bound variables per statement. */
const MAX_VARIABLES = 32_766;

function pragmas(role: 'source' | 'target'): string[] {
  return [
  'PRAGMA busy_timeout = 0',
  'PRAGMA locking_mode = EXCLUSIVE',
  'PRAGMA journal_mode = WAL',
  'PRAGMA synchronous = NORMAL',
  'PRAGMA foreign_keys = ON',
  // A target's random-id unique index must stay cached while it grows (~45 MiB per million
  // entries); a source is read in seq order, once, so its pages need no cache.
  `PRAGMA cache_size = ${role === 'target' ? -524288 : -16384}`,
  'PRAGMA wal_autocheckpoint = 64000',
  'PRAGMA temp_store = MEMORY',
  // The first write transaction takes the exclusive lock, held from here until close.
  'BEGIN EXCLUSIVE',
  'COMMIT',
  ];
}

function isBusy(err: unknown): boolean {
  return /SQLITE_BUSY|SQLITE_LOCKED|database is locked/i.test(String((err as { code?: unknown })?.code ?? '') + String((err as Error)?.message ?? err));
}

export class SqliteCopyConnection implements CopyConnection {
  readonly dialect = 'sqlite' as const;
  private readonly statements = new Map<string, Statement>();

  private constructor(
    readonly label: string,
    private readonly knex: Knex,
    private readonly db: Database,
  ) {}

  /** Opens (a target: creates) the file, takes it exclusively and brings its schema up to date. */
  static async open(filename: string, role: 'source' | 'target'): Promise<SqliteCopyConnection> {
    const file = path.resolve(filename);
    if (role === 'source' && !existsSync(file)) throw new P2pdbError('db_copy_source_missing', `no SQLite database at ${file}`);
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    const knex = knexFactory({
      client: 'sqlite3',
      connection: { filename: file },
      useNullAsDefault: true,
      // The refusal below says it better than knex's warning with a stack.
      log: { warn: (message: string) => void (/^Acquire connection error/.test(message) ? undefined : console.warn(message)) },
      pool: {
        min: 1,
        max: 1,
        afterCreate: (conn: Database, done: (err: Error | null, conn: Database) => void) => {
          (async () => {
            for (const sql of pragmas(role)) await run(conn, sql);
          })().then(
            () => done(null, conn),
            // knex does not close a connection its afterCreate refused: left open, it would keep
            // its shared lock and make the file look in use to the next attempt.
            (err: unknown) => conn.close(() => done(err as Error, conn)),
          );
        },
      },
    });
    try {
      await knex.migrate.latest({ migrationSource: sqliteMigrationSource });
      const held = (await knex.client.acquireConnection()) as Database;
      return new SqliteCopyConnection(`SQLite ${file}`, knex, held);
    } catch (err) {
      await knex.destroy().catch(() => undefined);
      if (isBusy(err)) {
        throw new P2pdbError(
          'node_running',
          `${file} is in use (another process has it open: a running node, or another copy); stop the node first`,
        );
      }
      throw Object.assign(new P2pdbError('internal', `cannot open ${file}: ${(err as Error).message}`), { cause: err });
    }
  }

  rows<T>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
    return all<T>(this.db, sql, [...params]);
  }

  async run(sql: string, params: readonly unknown[] = []): Promise<void> {
    await run(this.db, sql, [...params]);
  }

  async transaction<T>(fn: () => Promise<T>): Promise<T> {
    await run(this.db, 'BEGIN IMMEDIATE');
    try {
      const out = await fn();
      await run(this.db, 'COMMIT');
      return out;
    } catch (err) {
      await run(this.db, 'ROLLBACK').catch(() => undefined);
      throw err;
    }
  }

  async insertRows(table: string, columns: readonly string[], rows: readonly unknown[][]): Promise<void> {
    const most = Math.min(MAX_CHUNK_ROWS, Math.floor(MAX_VARIABLES / columns.length));
    for (let offset = 0; offset < rows.length; ) {
      let size = MAX_CHUNK_ROWS;
      while (size > most || size > rows.length - offset) size >>= 1;
      const params: unknown[] = [];
      for (let r = offset; r < offset + size; r++) for (const v of rows[r]!) params.push(v);
      await runStatement(await this.statement(table, columns, size), params);
      offset += size;
    }
  }

  async finish(): Promise<void> {
    // Everything into the main file, so the copy is one file again (and fsynced).
    await run(this.db, 'PRAGMA wal_checkpoint(TRUNCATE)');
  }

  async close(): Promise<void> {
    for (const stmt of this.statements.values()) await finalize(stmt);
    this.statements.clear();
    this.knex.client.releaseConnection(this.db);
    await this.knex.destroy();
  }

  private async statement(table: string, columns: readonly string[], rows: number): Promise<Statement> {
    const key = `${table}:${rows}`;
    let stmt = this.statements.get(key);
    if (!stmt) {
      const tuple = `(${columns.map(() => '?').join(',')})`;
      stmt = await prepare(this.db, `INSERT INTO ${table} (${columns.join(', ')}) VALUES ${new Array(rows).fill(tuple).join(',')}`);
      this.statements.set(key, stmt);
    }
    return stmt;
  }
}
