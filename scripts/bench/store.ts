/**
 * The entry store on its own (no HTTP, no verification): insert entries/s into an empty store
 * and into one already holding `stored` entries, batched as the ingest path sends them
 * (calls of `batch`, `inFlight` calls at once), then query latency p50/p99 per filter.
 *
 * Run directly: node dist/scripts/bench/store.js [--quick] [--entries N] [--stored 0,1000000]
 *   [--durability full|normal] [--ckpt PAGES] [--max-batch N] [--batch N] [--in-flight N]
 * prints one JSON object per measurement.
 */
import { mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { sha256 } from '../../src/crypto/hash.js';
import type { Durability } from '../../src/store/sqlite/pragmas.js';
import { openSqliteStore as openStore, STORE_DEFAULTS, type SqliteStore as SqliteEntryStore } from '../../src/store/sqlite/open.js';
import { openStore as openAnyStore } from '../../src/store/open.js';
import type { EntryFilter, EntryStore, StoredEntry } from '../../src/store/types.js';
import { benchDatabase, type BenchBackend } from './database.js';
import { copyPrefilled, SyntheticEntries } from './prefill.js';

export interface StoreBenchOptions {
  quick?: boolean;
  /** Entries inserted per measurement. */
  entries?: number;
  /** Store sizes to insert into; queries run on the largest. */
  stored?: number[];
  batch?: number;
  inFlight?: number;
  queries?: number;
  durability?: Durability;
  walAutocheckpointPages?: number;
  maxBatchEntries?: number;
  backend?: BenchBackend;
}

function round(x: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

export async function measureInsert(store: EntryStore, source: SyntheticEntries, n: number, batch: number, inFlight: number) {
  // Made before the clock starts: generating bytes is not the store's work.
  const calls = Array.from({ length: Math.ceil(n / batch) }, (_, i) => source.next(Math.min(batch, n - i * batch)));
  let next = 0;
  let stored = 0;
  const latencies: number[] = [];
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < calls.length) {
        const t = performance.now();
        for (const o of await store.insert(calls[next++]!)) if (o === 'stored') stored++;
        latencies.push(performance.now() - t);
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  if (stored !== n) throw new Error(`stored ${stored} of ${n}`);
  latencies.sort((a, b) => a - b);
  return { seconds, entries_per_s: n / seconds, call_p50_ms: percentile(latencies, 0.5), call_p99_ms: percentile(latencies, 0.99), call_max_ms: latencies[latencies.length - 1]! };
}

/** Real filter values sampled from across the store. */
async function samples(store: EntryStore, total: number): Promise<StoredEntry[]> {
  const out: StoredEntry[] = [];
  for (let k = 0; k < 50; k++) {
    const page = await store.query({ afterSeq: Math.floor(((k + 0.5) / 50) * total), limit: 20 });
    out.push(...page.entries);
  }
  return out;
}

async function measureQueries(store: EntryStore, stored: number, count: number, tag: Record<string, unknown>): Promise<object[]> {
  const s = await samples(store, stored);
  const pick = (i: number) => s[(i * 7919) % s.length]!;
  const cursor = (i: number) => (i * 104_729) % stored;
  const tableFp = new Map<string, Buffer>();
  for (const e of s) tableFp.set(e.entry.table.toString('latin1'), sha256(e.entry.table));
  const table = (e: StoredEntry) => tableFp.get(e.entry.table.toString('latin1'))!;
  const allTables = [...tableFp.values()];
  const times = s.map((e) => e.receivedAt).sort((a, b) => a - b);
  const filters: Record<string, (i: number) => EntryFilter> = {
    'afterSeq (cursor), 100': (i) => ({ afterSeq: cursor(i), limit: 100 }),
    'ids (1)': (i) => ({ ids: [pick(i).id], limit: 1 }),
    'ids (100)': (i) => ({ ids: Array.from({ length: 100 }, (_, k) => pick(i + k).id), limit: 100 }),
    'recipients (1), first 100': (i) => ({ recipients: [pick(i).entry.to], limit: 100 }),
    'recipients (1), 100 after a cursor': (i) => ({ recipients: [pick(i).entry.to], afterSeq: cursor(i), limit: 100 }),
    'recipients (50), 100': (i) => ({ recipients: Array.from({ length: 50 }, (_, k) => pick(i + k).entry.to), limit: 100 }),
    'tables (1), 100 after a cursor': (i) => ({ tables: [table(pick(i))], afterSeq: cursor(i), limit: 100 }),
    [`tables (all ${allTables.length}), 100`]: (i) => ({ tables: allTables, afterSeq: cursor(i), limit: 100 }),
    'receivedSince, 100': (i) => ({ receivedSince: times[(i * 31) % times.length]!, limit: 100 }),
    'tables + recipients (a pair that occurs), 100': (i) => ({ tables: [table(pick(i))], recipients: [pick(i).entry.to], limit: 100 }),
    // The worst case of a residual check: every entry of the recipient is read, none matches.
    'tables + recipients (disjoint), 100': (i) => ({ tables: [table(pick(i))], recipients: [pick(i + 1).entry.to], limit: 100 }),
  };
  const out: object[] = [];
  for (const [filter, make] of Object.entries(filters)) {
    for (let i = 0; i < Math.min(50, count); i++) await store.query(make(i)); // warm-up
    const ms: number[] = [];
    let rows = 0;
    for (let i = 0; i < count; i++) {
      const f = make(i + 1000);
      const t = performance.now();
      rows += (await store.query(f)).entries.length;
      ms.push(performance.now() - t);
    }
    ms.sort((a, b) => a - b);
    out.push({ bench: 'store-query', filter, ...tag, queries: count, rows_per_query: round(rows / count, 1), p50_ms: round(percentile(ms, 0.5), 3), p99_ms: round(percentile(ms, 0.99), 3) });
  }
  for (const [name, fn] of [
    ['count()', () => store.count()],
    ['countByTable()', () => store.countByTable()],
  ] as const) {
    const ms: number[] = [];
    for (let i = 0; i < count; i++) {
      const t = performance.now();
      await fn();
      ms.push(performance.now() - t);
    }
    ms.sort((a, b) => a - b);
    out.push({ bench: 'store-query', filter: name, ...tag, queries: count, p50_ms: round(percentile(ms, 0.5), 3), p99_ms: round(percentile(ms, 0.99), 3) });
  }
  return out;
}

export async function benchStore(opts: StoreBenchOptions = {}): Promise<object[]> {
  const quick = opts.quick ?? false;
  const n = opts.entries ?? (quick ? 20_000 : 200_000);
  const sizes = opts.stored ?? (quick ? [0, 100_000] : [0, 1_000_000]);
  const batch = opts.batch ?? 500;
  const inFlight = opts.inFlight ?? 4;
  const queries = opts.queries ?? (quick ? 200 : 1000);
  const durability = opts.durability ?? STORE_DEFAULTS.durability;
  const ckpt = opts.walAutocheckpointPages ?? STORE_DEFAULTS.walAutocheckpointPages;
  const maxBatch = opts.maxBatchEntries ?? STORE_DEFAULTS.maxBatchEntries;
  const largest = Math.max(...sizes);
  const out: object[] = [];
  if ((opts.backend ?? 'sqlite') === 'postgres') return benchStorePostgres(n, sizes, batch, inFlight, queries, maxBatch);
  for (const stored of sizes) {
    const dir = path.join(tmpdir(), `p2pdb-bench-store-${process.pid}-${Date.now()}`);
    const filename = path.join(dir, 'p2pdb.sqlite');
    await mkdir(dir, { recursive: true });
    try {
      if (stored > 0) await copyPrefilled(stored, filename);
      const store = await openStore({ filename, durability, walAutocheckpointPages: ckpt, maxBatchEntries: maxBatch });
      try {
        // A different stream from the prefill's, so no id collides with a stored one.
        const source = new SyntheticEntries({}, `bench-insert-${Date.now()}`);
        const r = await measureInsert(store, source, n, batch, inFlight);
        const tag = { durability, wal_autocheckpoint: ckpt, max_batch: maxBatch };
        out.push({ bench: 'store-insert', backend: 'sqlite', stored_before: stored, entries: n, batch, in_flight: inFlight, ...tag, seconds: round(r.seconds, 2), entries_per_s: round(r.entries_per_s), call_p50_ms: round(r.call_p50_ms, 1), call_p99_ms: round(r.call_p99_ms, 1), call_max_ms: round(r.call_max_ms, 1) });
        if (stored === largest && queries > 0) out.push(...(await measureQueries(store, stored, queries, { stored: stored + n })));
      } finally {
        await store.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  return out;
}

/** The same measurements on PostgreSQL (database.ts: a local server with fsync on). */
async function benchStorePostgres(n: number, sizes: number[], batch: number, inFlight: number, queries: number, maxBatch: number): Promise<object[]> {
  const largest = Math.max(...sizes);
  const out: object[] = [];
  for (const stored of sizes) {
    const db = await benchDatabase('postgres', stored, 'store');
    try {
      const store = await openAnyStore({ database: db.locator, maxBatchEntries: maxBatch });
      try {
        const source = new SyntheticEntries({}, `bench-insert-${Date.now()}`);
        const r = await measureInsert(store, source, n, batch, inFlight);
        out.push({ bench: 'store-insert', backend: 'postgres', stored_before: stored, entries: n, batch, in_flight: inFlight, max_batch: maxBatch, seconds: round(r.seconds, 2), entries_per_s: round(r.entries_per_s), call_p50_ms: round(r.call_p50_ms, 1), call_p99_ms: round(r.call_p99_ms, 1), call_max_ms: round(r.call_max_ms, 1) });
        if (stored === largest && queries > 0) out.push(...(await measureQueries(store, stored, queries, { backend: 'postgres', stored: stored + n })));
      } finally {
        await store.close();
      }
    } finally {
      await db.remove();
    }
  }
  return out;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      entries: { type: 'string' },
      stored: { type: 'string' },
      batch: { type: 'string' },
      'in-flight': { type: 'string' },
      queries: { type: 'string' },
      durability: { type: 'string' },
      ckpt: { type: 'string' },
      'max-batch': { type: 'string' },
    },
  });
  const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
  const rows = await benchStore({
    quick: values.quick ?? false,
    ...(values.entries ? { entries: num(values.entries)! } : {}),
    ...(values.stored ? { stored: values.stored.split(',').map(Number) } : {}),
    ...(values.batch ? { batch: num(values.batch)! } : {}),
    ...(values['in-flight'] ? { inFlight: num(values['in-flight'])! } : {}),
    ...(values.queries ? { queries: num(values.queries)! } : {}),
    ...(values.durability ? { durability: values.durability as Durability } : {}),
    ...(values.ckpt ? { walAutocheckpointPages: num(values.ckpt)! } : {}),
    ...(values['max-batch'] ? { maxBatchEntries: num(values['max-batch'])! } : {}),
  });
  for (const row of rows) console.log(JSON.stringify(row));
}
