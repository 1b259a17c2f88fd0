/**
 * Which database the tests of this process run against. scripts/run-tests.mjs runs the store,
 * ingest, sync, subscription and HTTP test files once per backend, setting P2PDB_TEST_BACKEND
 * (sqlite, the default, or postgres): the same tests, parameterised by this file, not copied.
 * On postgres every store or node gets a fresh database on the run's shared server.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { parseDatabase, type DatabaseLocator } from '../../src/store/database-locator.js';
import { openStore } from '../../src/store/open.js';
import type { PeerTable, PeerTableOptions } from '../../src/store/peer-table.js';
import type { Store } from '../../src/store/types.js';
import { usePostgres } from './postgres.js';

export type BackendName = 'sqlite' | 'postgres';

export const TEST_BACKEND: BackendName = process.env.P2PDB_TEST_BACKEND === 'postgres' ? 'postgres' : 'sqlite';

/** For test options: `{ skip: sqliteOnly }` skips a test that is about SQLite itself on the other backend. */
export const sqliteOnly: string | false = TEST_BACKEND === 'sqlite' ? false : 'about SQLite itself';

/** Names the backend in describe() titles, so a report says which run failed. */
export function onBackend(title: string): string {
  return `${title} [${TEST_BACKEND}]`;
}

const postgres = TEST_BACKEND === 'postgres' ? usePostgres() : undefined;

/** A fresh database: a SQLite file under `dir`, or a new database on the run's PostgreSQL. */
export async function freshDatabase(dir: string, file = 'p2pdb.sqlite'): Promise<DatabaseLocator> {
  // The directory exists on both backends: a node keeps more than its database there (the sync index snapshot).
  await mkdir(dir, { recursive: true });
  if (postgres) return parseDatabase(await postgres.database(), dir);
  return { kind: 'sqlite', filename: path.resolve(dir, file) };
}

/** The `database` setting of a node config: undefined (SQLite in its data dir) or a fresh PostgreSQL database. */
export async function nodeDatabaseSetting(): Promise<string | undefined> {
  return postgres ? postgres.database() : undefined;
}

/** The peer table on a store of its own (as the CLI opens it); close() closes that store. */
export async function openPeerTable(database: DatabaseLocator, opts: PeerTableOptions = {}): Promise<PeerTable & { store: Store; close(): Promise<void> }> {
  const store = await openStore({ database, durability: 'normal' });
  return Object.assign(store.peers(opts), { store, close: () => store.close() });
}
