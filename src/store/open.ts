/** Opens the node's store on the database a locator names (database-locator.ts). */
import type { DatabaseLocator } from './database-locator.js';
import { openPostgresStore } from './postgres/open.js';
import { openSqliteStore, type SqliteStoreOptions } from './sqlite/open.js';
import type { Store } from './types.js';

export { parseDatabase, type DatabaseLocator } from './database-locator.js';

export type OpenStoreOptions = Omit<SqliteStoreOptions, 'filename'> & { database: DatabaseLocator };

export function openStore(opts: OpenStoreOptions): Promise<Store> {
  const { database, ...rest } = opts;
  if (database.kind === 'postgres') {
    return openPostgresStore({ url: database.url, ...(rest.maxBatchEntries ? { maxBatchEntries: rest.maxBatchEntries } : {}), ...(rest.clock ? { clock: rest.clock } : {}) });
  }
  return openSqliteStore({ ...rest, filename: database.filename });
}
