/**
 * The store on PostgreSQL (knex + pg), for large nodes: `--database postgres://…`. One pool
 * serves reads, the writer (a connection per transaction, writer.ts) and the small writes of
 * the peer table and sync state. int8 columns (seq, times, counts) come back as numbers: they
 * stay far below 2^53.
 */
import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import { P2pdbError } from '../../errors.js';
import { Db } from '../db.js';
import { KeyDirectory } from '../keys.js';
import { asInternalError, KnexStore } from '../store.js';
import { EntryWriter } from '../writer.js';
import { postgresMigrationSource } from './migrations.js';
import { isConnectionLost, PostgresWriteConnection } from './writer.js';

export interface PostgresStoreOptions {
  /** postgres://user[:password]@host[:port]/database[?…] */
  url: string;
  /** Most entries per group-commit transaction. */
  maxBatchEntries?: number;
  /** Connections in the pool (default 10). */
  poolSize?: number;
  /** Source of received_at (ms); injectable so tests can control time. */
  clock?: () => number;
}

const INT8_OID = 20;
const types: Knex.PgCustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary' ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format as 'text')) as Knex.PgGetTypeParser,
};

/** The URL without its password, for messages and logs. */
export function redactDatabaseUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(unparsable URL)';
  }
}

export function postgresStoreError(err: unknown, what: string): P2pdbError {
  if (isConnectionLost(err) || (err as { code?: unknown })?.code === 'ENOTFOUND') {
    const message = err instanceof Error ? err.message : String(err);
    return Object.assign(new P2pdbError('store_unavailable', `${what}: the database cannot be reached (${message}); nothing was stored, try again`), { cause: err });
  }
  return asInternalError(err, what);
}

export async function openPostgresStore(opts: PostgresStoreOptions): Promise<KnexStore> {
  const knex = knexFactory({
    client: 'pg',
    connection: { connectionString: opts.url, application_name: 'p2pdb', types },
    pool: { min: 0, max: Math.max(2, opts.poolSize ?? 10) },
    acquireConnectionTimeout: 15_000,
  });
  try {
    // The migrator's lock table makes concurrent start-ups of several processes safe.
    await knex.migrate.latest({ migrationSource: postgresMigrationSource });
  } catch (err) {
    await knex.destroy().catch(() => undefined);
    throw postgresStoreError(err, `cannot open the store ${redactDatabaseUrl(opts.url)}`);
  }
  const db = new Db(knex, 'postgres');
  const keys = new KeyDirectory();
  return new KnexStore({
    backend: 'postgres',
    read: db,
    small: db,
    writer: new EntryWriter(new PostgresWriteConnection(knex), keys, opts.clock ?? Date.now),
    keys,
    maxBatchEntries: opts.maxBatchEntries ?? 2000,
    storeError: postgresStoreError,
    closeConnections: () => knex.destroy(),
  });
}
