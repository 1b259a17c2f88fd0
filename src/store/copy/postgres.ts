/**
 * A PostgreSQL database held for `p2pdb db copy`: one dedicated connection (pg, not a pool),
 * named 'p2pdb-db-copy' so it never counts as a node.
 *
 * The running-node check, and what holds the database during the copy:
 * - A node's pool connects as application_name 'p2pdb' (postgres/open.ts); any such session on
 *   the same database means a node is using it, and the copy refuses.
 * - The copy then takes the entry writer's lock (postgres/writer.ts WRITE_LOCK_KEY) as a
 *   session lock, without waiting (a node in the middle of a write holds it: refused), and
 *   keeps it until it closes. Every node write takes that lock first, so a node started (or
 *   one whose idle pool had let its connections go) cannot write to either database until the
 *   copy is over. PostgreSQL releases the lock when the session ends, even on kill -9.
 * The first check cannot see a node whose pool has been idle long enough to close every
 * connection (knex closes idle ones after 30 s); the CLI also asks the data directory's node
 * (src/node/liveness.ts), and the held lock keeps such a node's writes out of the copy.
 *
 * Writes are multi-row INSERTs with binary parameters (Buffers travel as bytes), one
 * transaction per batch, with synchronous_commit off: a crash loses at most the last batches,
 * never consistency; finish() commits once more with it on, which flushes everything before.
 */
import { randomBytes } from 'node:crypto';
import knexFactory from 'knex';
import pg from 'pg';
import { P2pdbError } from '../../errors.js';
import { postgresMigrationSource } from '../postgres/migrations.js';
import { postgresStoreError, redactDatabaseUrl } from '../postgres/open.js';
import { numbered, WRITE_LOCK_KEY } from '../postgres/writer.js';
import type { CopyConnection } from './endpoint.js';

export const COPY_APPLICATION_NAME = 'p2pdb-db-copy';
/** application_name of a node's connections (postgres/open.ts). */
const NODE_APPLICATION_NAME = 'p2pdb';
/** Rows per INSERT at most: 1,000 × 10 columns = 10,000 parameters (PostgreSQL allows 65,535). */
const MAX_CHUNK_ROWS = 1000;
const MAX_PARAMS = 65_535;

const INT8_OID = 20;
/**
 * int8 (seq, times, counts) as numbers, as the store reads them: they stay far below 2^53.
 * Results stay in text format (bytea as hex): pg 8's binary result mode reads every field as
 * a UTF-8 string before handing it over, which mangles bytea (tried: the copy came out
 * corrupted, caught by the tests' read-back through the store).
 */
const types = {
  getTypeParser: (oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary' ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format as 'text'),
} as pg.CustomTypesConfig;

export class PostgresCopyConnection implements CopyConnection {
  readonly dialect = 'postgres' as const;
  /** This session's application_name: unique, so the other side can tell whether it is the same database. */
  readonly sessionTag: string;
  private tail: Promise<void> = Promise.resolve();

  private constructor(
    readonly label: string,
    private readonly url: string,
    private readonly client: pg.Client,
    sessionTag: string,
  ) {
    this.sessionTag = sessionTag;
  }

  /** Connects, nothing more: hold() checks and takes the database once both sides are known to differ. */
  static async connect(url: string): Promise<PostgresCopyConnection> {
    const label = `PostgreSQL ${redactDatabaseUrl(url)}`;
    const sessionTag = `${COPY_APPLICATION_NAME} ${randomBytes(6).toString('hex')}`;
    const client = new pg.Client({ connectionString: url, application_name: sessionTag, types });
    try {
      await client.connect();
    } catch (err) {
      await client.end().catch(() => undefined);
      throw postgresStoreError(err, `cannot connect to ${label}`);
    }
    return new PostgresCopyConnection(label, url, client, sessionTag);
  }

  /**
   * Refuses a database a node is using, takes the write lock for the rest of the session and
   * brings the schema up to date. A source must already hold a p2pdb store: an empty database
   * is more likely a wrong URL than a node with nothing in it.
   */
  async hold(role: 'source' | 'target'): Promise<void> {
    const label = this.label;
    try {
      if (role === 'source') {
        const [schema] = await this.rows<{ t: string | null }>("SELECT to_regclass('entries')::text AS t");
        if (!schema?.t) throw new P2pdbError('db_copy_source_missing', `${label} holds no p2pdb store (no entries table)`);
      }
      const [nodes] = await this.rows<{ n: number }>(
        'SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = ? AND pid <> pg_backend_pid()',
        [NODE_APPLICATION_NAME],
      );
      if ((nodes?.n ?? 0) > 0) throw new P2pdbError('node_running', `${label} is in use by a running p2pdb node (${nodes!.n} connection(s)); stop the node first`);
      const [lock] = await this.rows<{ ok: boolean }>('SELECT pg_try_advisory_lock(?) AS ok', [WRITE_LOCK_KEY]);
      if (!lock?.ok) throw new P2pdbError('node_running', `${label}: a p2pdb node or another copy is writing to it (its write lock is taken); stop it first`);
      await this.migrate();
      await this.run('SET synchronous_commit = off');
    } catch (err) {
      if (err instanceof P2pdbError) throw err;
      throw postgresStoreError(err, `cannot open ${label}`);
    }
  }

  /** True when `other` is a session on this very database (the same server, the same database name). */
  async sees(other: PostgresCopyConnection): Promise<boolean> {
    const [row] = await this.rows<{ n: number }>('SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = ?', [other.sessionTag]);
    return (row?.n ?? 0) > 0;
  }

  async rows<T>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
    const res = await this.query({ text: numbered(sql), values: [...params] });
    return res.rows as T[];
  }

  async run(sql: string, params: readonly unknown[] = []): Promise<void> {
    await this.query({ text: numbered(sql), values: [...params] });
  }

  /**
   * One statement at a time on the one connection: the copy reads its next page while the
   * previous batch's seconds are looked up, and pg no longer queues overlapping queries itself.
   */
  private query(q: pg.QueryConfig): Promise<pg.QueryResult> {
    const result = this.tail.then(() => this.client.query(q));
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }

  async transaction<T>(fn: () => Promise<T>): Promise<T> {
    await this.query({ text: 'BEGIN' });
    try {
      const out = await fn();
      await this.query({ text: 'COMMIT' });
      return out;
    } catch (err) {
      await this.query({ text: 'ROLLBACK' }).catch(() => undefined);
      throw err;
    }
  }

  async insertRows(table: string, columns: readonly string[], rows: readonly unknown[][]): Promise<void> {
    const most = Math.min(MAX_CHUNK_ROWS, Math.floor(MAX_PARAMS / columns.length));
    for (let offset = 0; offset < rows.length; offset += most) {
      const chunk = rows.slice(offset, offset + most);
      const params: unknown[] = [];
      const tuples: string[] = [];
      for (const row of chunk) {
        tuples.push(`(${row.map((v) => (params.push(v), `$${params.length}`)).join(',')})`);
      }
      const text = `INSERT INTO ${table} (${columns.join(', ')}) VALUES ${tuples.join(',')}`;
      // Full chunks repeat: a named statement is parsed and planned once.
      await this.query(chunk.length === most ? { name: `p2pdb_copy_${table}_${most}`, text, values: params } : { text, values: params });
    }
  }

  async finish(): Promise<void> {
    await this.run('SET synchronous_commit = on');
    await this.transaction(async () => {
      // table_keys.id is a serial: ids were copied as they are, so its sequence must move past
      // them, or the node's next new table would be given an id already taken.
      await this.run("SELECT setval(pg_get_serial_sequence('table_keys', 'id'), max(id)) FROM table_keys HAVING max(id) IS NOT NULL");
    });
    // Fresh statistics for the planner: a bulk load leaves none until autovacuum comes by.
    await this.run('ANALYZE');
  }

  async close(): Promise<void> {
    await this.client.end().catch(() => undefined);
  }

  private async migrate(): Promise<void> {
    const knex = knexFactory({ client: 'pg', connection: { connectionString: this.url, application_name: COPY_APPLICATION_NAME }, pool: { min: 0, max: 1 } });
    try {
      await knex.migrate.latest({ migrationSource: postgresMigrationSource });
    } finally {
      await knex.destroy();
    }
  }
}
