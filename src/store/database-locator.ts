/**
 * Where a node's data lives: a PostgreSQL URL (postgres:// or postgresql://), or a SQLite file
 * (a path, or sqlite:PATH, relative to the data directory). Without one, SQLite in the data
 * directory: the default needs nothing set up. Pure, so config validation can use it.
 */
import path from 'node:path';
import { fail } from '../errors.js';

export type DatabaseLocator = { kind: 'sqlite'; filename: string } | { kind: 'postgres'; url: string };

export const SQLITE_FILE_NAME = 'p2pdb.sqlite';

/** Where a node's data lives, from its --database value (or none) and its data directory. */
export function parseDatabase(database: string | undefined, dataDir: string): DatabaseLocator {
  const value = database?.trim() ?? '';
  if (value === '') return { kind: 'sqlite', filename: path.resolve(dataDir, SQLITE_FILE_NAME) };
  if (/^postgres(ql)?:\/\//i.test(value)) {
    try {
      new URL(value);
    } catch {
      fail('config_invalid', 'database: not a valid postgres:// URL');
    }
    return { kind: 'postgres', url: value };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) fail('config_invalid', `database: unsupported scheme in ${value.split('://')[0]}:// (use postgres://… or a SQLite file path)`);
  const file = value.startsWith('sqlite:') ? value.slice('sqlite:'.length) : value;
  if (file === '') fail('config_invalid', 'database: sqlite: needs a file path');
  return { kind: 'sqlite', filename: path.resolve(dataDir, file) };
}

