/**
 * Where a benchmark's node keeps its data, on either backend (--backend sqlite|postgres):
 * a data directory whose database already holds the prefill's first `stored` entries.
 *
 * SQLite: a copy of the cached prefilled file (prefill.ts). PostgreSQL: a database on a local
 * server whose cluster lives in .bench-cache/postgres and is kept between runs (fsync on, as a
 * production server), created from a template database filled once per size and data set
 * (CREATE DATABASE … TEMPLATE copies its files: seconds instead of minutes of inserts).
 */
import { mkdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { DatabaseLocator } from '../../src/store/database-locator.js';
import { openStore } from '../../src/store/open.js';
import { POSTGRES_MIGRATIONS } from '../../src/store/postgres/migrations.js';
import {
  createDatabaseAt,
  databaseExistsAt,
  databaseSizeAt,
  dropDatabaseAt,
  startLocalPostgres,
  type LocalPostgres,
} from '../../src/store/postgres/local-server.js';
import { copyPrefilled, PREFILL_CACHE_DIR, prefillInto, type PrefillOptions } from './prefill.js';

export type BenchBackend = 'sqlite' | 'postgres';

export interface BenchDatabase {
  dir: string;
  /** The node's --database value (undefined: SQLite in dir). */
  database: string | undefined;
  locator: DatabaseLocator;
  /** Bytes the store takes on disk now (SQLite: the file and its WAL; PostgreSQL: pg_database_size). */
  bytesOnDisk(): Promise<number>;
  remove(): Promise<void>;
}

let server: Promise<LocalPostgres> | undefined;

/** The benchmarks' PostgreSQL server, started on first use and stopped (its files kept) at exit. */
export function benchPostgres(): Promise<LocalPostgres> {
  server ??= (async () => {
    const dir = path.join(PREFILL_CACHE_DIR, 'postgres');
    await mkdir(dir, { recursive: true });
    const s = await startLocalPostgres({ dir, keepDir: true, fsync: true, settings: { shared_buffers: '2GB', max_wal_size: '8GB', checkpoint_timeout: '15min' } });
    process.once('beforeExit', () => void s.stop({ keep: true }));
    return s;
  })();
  return server;
}

/** Stops the benchmarks' server, if one was started (its cluster stays for the next run). */
export async function stopBenchPostgres(): Promise<void> {
  if (!server) return;
  const s = await server;
  server = undefined;
  await s.stop({ keep: true });
}

async function fileBytes(file: string): Promise<number> {
  let total = 0;
  for (const ext of ['', '-wal']) total += await stat(file + ext).then((s) => s.size, () => 0);
  return total;
}

function templateName(n: number, opts: PrefillOptions): string {
  const schema = POSTGRES_MIGRATIONS.length;
  return `prefill_m${schema}_n${n}_s${opts.seed ?? 1}_t${opts.tables ?? 16}_r${opts.recipients ?? 1000}`;
}

export async function benchDatabase(backend: BenchBackend, stored: number, tag: string, prefill: PrefillOptions = {}): Promise<BenchDatabase> {
  const dir = path.join(tmpdir(), `p2pdb-bench-${tag}-${process.pid}-${Date.now()}`);
  await mkdir(dir, { recursive: true });
  if (backend === 'sqlite') {
    const filename = path.join(dir, 'p2pdb.sqlite');
    if (stored > 0) await copyPrefilled(stored, filename, prefill);
    return {
      dir,
      database: undefined,
      locator: { kind: 'sqlite', filename },
      bytesOnDisk: () => fileBytes(filename),
      remove: () => rm(dir, { recursive: true, force: true }),
    };
  }
  const pg = await benchPostgres();
  let template: string | undefined;
  if (stored > 0) {
    template = templateName(stored, prefill);
    if (!(await databaseExistsAt(pg.url, template))) {
      const building = `${template}_building`;
      await dropDatabaseAt(pg.url, building);
      const url = await createDatabaseAt(pg.url, building);
      process.stderr.write(`prefill: building PostgreSQL template ${template} (${stored} entries)\n`);
      const store = await openStore({ database: { kind: 'postgres', url }, maxBatchEntries: 10_000 });
      const { seconds, entries_per_s } = await prefillInto(store, stored, prefill);
      process.stderr.write(`prefill: ${stored} entries in ${seconds.toFixed(1)} s (${Math.round(entries_per_s)}/s)\n`);
      await createDatabaseAt(pg.url, template, { template: building });
      await dropDatabaseAt(pg.url, building);
    }
  }
  const name = `bench_${tag.replace(/[^a-z0-9_]/g, '_')}_${process.pid}_${Date.now() % 1e9}`;
  const url = await createDatabaseAt(pg.url, name, template ? { template } : {});
  return {
    dir,
    database: url,
    locator: { kind: 'postgres', url },
    bytesOnDisk: () => databaseSizeAt(pg.url, name),
    remove: async () => {
      await dropDatabaseAt(pg.url, name);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
