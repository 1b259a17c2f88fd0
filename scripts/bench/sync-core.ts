/**
 * The reconciliation core on its own (src/sync): one JSON line per measurement.
 *   apply        cost of applying store notices to the in-memory index (entries/s, and the share
 *                of ingest throughput it takes at 17,000–30,000 entries/s; the bound is 10%)
 *   derive       what deriving interior nodes from the leaves would cost instead (per root read)
 *   build        index build for N ids of one table: time and memory
 *   sqlite_*     rebuild from a real store, snapshot write and load (with --store)
 *   answer       answerSync time per round and the protocol's bytes / round trips for N ids, d differences
 *   threshold    bytes and round trips per list threshold (the sweep that chose DEFAULT_TUNING)
 *
 * Run: node dist/scripts/bench/sync-core.js [--n 1000000] [--store] [--quick]
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { encodeRequest } from '../../src/sync/codec.js';
import { MemoryIds } from '../../src/sync/memory-ids.js';
import { LEAF_COUNT, PrefixForest } from '../../src/sync/prefix-tree.js';
import { answerSync, DEFAULT_TUNING, Reconciliation, type ReconcileTuning } from '../../src/sync/reconcile.js';
import { addWords, SUM_WORDS } from '../../src/sync/sum256.js';

const print = (o: Record<string, unknown>) => process.stdout.write(JSON.stringify({ bench: 'sync-core', ...o }) + '\n');
const round = (x: number, d = 0) => Math.round(x * 10 ** d) / 10 ** d;
const everything = { mirrors: () => true };

function ids(n: number): Buffer[] {
  const all = randomBytes(n * 32);
  return Array.from({ length: n }, (_, i) => all.subarray(i * 32, i * 32 + 32));
}

function measureApply(list: Buffer[]): void {
  const table = randomBytes(32);
  let best = Infinity;
  for (let r = 0; r < 3; r++) {
    const forest = new PrefixForest();
    const t0 = performance.now();
    for (const id of list) forest.add(table, id);
    best = Math.min(best, performance.now() - t0);
  }
  const perS = list.length / (best / 1000);
  print({
    measure: 'apply',
    n: list.length,
    entries_per_s: round(perS),
    ns_per_entry: round((best * 1e6) / list.length),
    share_of_ingest_at_17k: round((17_000 / perS) * 100, 2),
    share_of_ingest_at_30k: round((30_000 / perS) * 100, 2),
  });
}

function measureDerive(): void {
  // The alternative design: keep only leaves and sum them on each interior read.
  const leaves = new Uint32Array(LEAF_COUNT * SUM_WORDS);
  for (let i = 0; i < leaves.length; i++) leaves[i] = (Math.random() * 2 ** 32) >>> 0;
  const acc = new Uint32Array(SUM_WORDS);
  const reps = 50;
  const t0 = performance.now();
  for (let r = 0; r < reps; r++) for (let l = 0; l < LEAF_COUNT; l++) addWords(acc, 0, leaves, l * SUM_WORDS);
  print({ measure: 'derive', what: 'root from 65,536 leaves', ms_per_read: round((performance.now() - t0) / reps, 3) });
}

function measureBuild(list: Buffer[]): void {
  const table = randomBytes(32);
  global.gc?.();
  const before = process.memoryUsage();
  const t0 = performance.now();
  const forest = new PrefixForest();
  for (const id of list) forest.add(table, id);
  const ms = performance.now() - t0;
  global.gc?.();
  const after = process.memoryUsage();
  print({
    measure: 'build',
    n: list.length,
    ms: round(ms),
    tree_bytes: forest.tree(table)!.bytes(),
    array_buffers_delta_bytes: after.arrayBuffers - before.arrayBuffers,
    heap_delta_bytes: after.heapUsed - before.heapUsed,
  });
}

async function measureAnswer(shared: Buffer[], d: number, tuning: ReconcileTuning, label: string): Promise<void> {
  const table = Buffer.alloc(32, 7);
  const extra = ids(d);
  const client = new MemoryIds();
  const server = new MemoryIds();
  client.addMany(table, [...shared, ...extra.filter((_, i) => i % 2 === 1)]);
  server.addMany(table, [...shared, ...extra.filter((_, i) => i % 2 === 0)]);
  const sv = server.view();
  const rec = new Reconciliation(client.view(), { tables: [table], allTables: false, scope: everything, tuning });
  const answerMs: number[] = [];
  const t0 = performance.now();
  let msg: Uint8Array | null = await rec.first();
  while (msg) {
    const t = performance.now();
    const reply = await answerSync(sv, msg, everything, tuning);
    answerMs.push(performance.now() - t);
    msg = await rec.next(reply);
  }
  const found = rec.need.length + rec.give.length + rec.needRanges.reduce((n, r) => n + r.count, 0) + rec.giveRanges.reduce((n, r) => n + r.count, 0);
  print({
    measure: label,
    n: shared.length,
    d,
    list_threshold: tuning.listThreshold,
    round_trips: rec.stats.roundTrips,
    bytes_sent: rec.stats.bytesSent,
    bytes_received: rec.stats.bytesReceived,
    bytes_total: rec.stats.bytesSent + rec.stats.bytesReceived,
    found,
    answer_ms_per_round: round(answerMs.reduce((a, b) => a + b, 0) / answerMs.length, 3),
    answer_ms_max: round(Math.max(...answerMs), 3),
    wall_ms: round(performance.now() - t0, 1),
  });
}

async function measureSqlite(n: number): Promise<void> {
  const { openStore } = await import('../../src/store/sqlite/open.js').then((m) => ({ openStore: m.openSqliteStore }));
  const { SyncIndex } = await import('../../src/sync/sync-index.js');
  const { copyPrefilled } = await import('./prefill.js');
  const dir = await mkdtemp(path.join(tmpdir(), 'p2pdb-sync-core-'));
  try {
    const filename = path.join(dir, 'p2pdb.sqlite');
    await copyPrefilled(n, filename, { tables: 1 });
    const store = await openStore({ filename });
    global.gc?.();
    const rss0 = process.memoryUsage().rss;
    let t0 = performance.now();
    let index = await SyncIndex.open({ store, dataDir: dir });
    print({ measure: 'sqlite_rebuild', n, ms: round(performance.now() - t0), entries_per_s: round(n / ((performance.now() - t0) / 1000)), rss_delta_bytes: process.memoryUsage().rss - rss0 });
    t0 = performance.now();
    await index.close();
    print({ measure: 'sqlite_snapshot_write', n, ms: round(performance.now() - t0) });
    t0 = performance.now();
    index = await SyncIndex.open({ store, dataDir: dir });
    print({ measure: 'sqlite_snapshot_load', n, ms: round(performance.now() - t0) });
    // Deep node reads (below the in-memory tree): children of random depth-4 and depth-5 nodes.
    for (const depth of [4, 5]) {
      const reps = 200;
      t0 = performance.now();
      const table = index.tables()[0]!.table;
      for (let i = 0; i < reps; i++) await index.view.children(table, randomBytes(4).toString('hex').slice(0, depth));
      print({ measure: 'sqlite_children', n, depth, ms_per_read: round((performance.now() - t0) / reps, 3) });
    }
    // One answerSync round over SQLite: CHILDREN of a depth-3 node with one child changed, so the
    // server reads that depth-4 node's ids from the store (the last round of a d = 1 reconciliation).
    {
      const table = index.tables()[0]!.table;
      const reps = 200;
      let total = 0;
      for (let i = 0; i < reps; i++) {
        const prefix = randomBytes(2).toString('hex').slice(0, 3);
        const kids = await index.view.children(table, prefix);
        const changed = kids.map((k, j) => (k.count === 0 ? null : j === 5 ? { count: k.count, fingerprint: randomBytes(16) } : k));
        const req = encodeRequest({ allTables: false, tables: [{ table, items: [{ kind: 'children', prefix, children: changed }] }] });
        const t = performance.now();
        await answerSync(index.view, req, everything);
        total += performance.now() - t;
      }
      print({ measure: 'sqlite_answer_round', n, what: 'CHILDREN at depth 3, one child differs: ids of a depth-4 node from SQLite', ms_per_round: round(total / reps, 3) });
    }
    await index.close();
    await store.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { n: { type: 'string' }, store: { type: 'boolean' }, quick: { type: 'boolean' } } });
  const n = Number(values.n ?? (values.quick ? 100_000 : 1_000_000));
  const list = ids(n);
  measureApply(list);
  measureDerive();
  measureBuild(list);
  for (const d of [0, 1, 10, 100, 1000]) await measureAnswer(list, d, DEFAULT_TUNING, 'answer');
  if (!values.quick) {
    for (const t of [8, 16, 24, 32, 48, 64]) {
      for (const d of [1, 10, 100]) await measureAnswer(list, d, { ...DEFAULT_TUNING, listThreshold: t, enumerateThreshold: t }, 'threshold');
    }
  }
  if (values.store) await measureSqlite(n);
}

await main();
