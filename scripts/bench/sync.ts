/**
 * `npm run bench -- sync [--n N] [--d D]`: two stores of one shared table holding N entries, the
 * far one with D more, reconciled over loopback HTTP. For each (N, D) it prints the bytes each
 * way (HTTP bodies only), round trips and wall time of p2pdb's reconciliation, and of the seed
 * prototype's approach (the full 50,000-bucket MD5 index, then a refetch of every bucket that
 * differs) in the same run against the same stores. The entries are synthetic (reconciliation
 * looks at ids only; verification is measured by the bootstrap benchmark). One pair of copies
 * serves every D of an N (the far side gains entries as D grows). Per N it also prints the near
 * side's sync index: full rebuild time and memory, snapshot write, and a restart from the snapshot.
 * --tables T spreads the prefill over T tables (default 1); --no-seed skips the seed's approach.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { openSqliteStore as openStore } from '../../src/store/sqlite/open.js';
import { Reconciliation } from '../../src/sync/reconcile.js';
import { SNAPSHOT_FILE, SyncIndex } from '../../src/sync/sync-index.js';
import { spawnChild } from './child.js';
import { copyPrefilled, SyntheticEntries } from './prefill.js';
import { buildSeedIndex, SEED_BUCKETS } from './sync-server.js';

export interface SyncBenchOptions {
  ns?: number[];
  ds?: number[];
  /** Also run the seed's approach (default true). */
  seed?: boolean;
  /** Tables in the prefilled stores (default 1); reconciliation covers all of them. */
  tables?: number;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

interface Exchange {
  status: number;
  body: Buffer;
}

function post(url: string, body: Uint8Array | undefined, method = 'POST'): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method,
      agent,
      headers: body ? { 'content-type': 'application/octet-stream', 'content-length': body.length } : {},
    });
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.end(body ? Buffer.from(body) : undefined);
  });
}

async function addExtra(dir: string, d: number, source: SyntheticEntries): Promise<void> {
  if (d === 0) return;
  const store = await openStore({ filename: path.join(dir, 'p2pdb.sqlite'), durability: 'normal' });
  try {
    for (let left = d; left > 0; left -= 2000) await store.insert(source.next(Math.min(2000, left)));
  } finally {
    await store.close();
  }
}

async function reconcileOnce(url: string, index: SyncIndex): Promise<Record<string, number>> {
  const tables = index.tables().map((t) => t.table);
  const t0 = performance.now();
  const r = new Reconciliation(index.view, { tables, allTables: false, scope: { mirrors: () => true } });
  let message: Uint8Array | null = await r.first();
  while (message) {
    const res = await post(`${url}/sync/`, message);
    if (res.status !== 200) throw new Error(`sync answered ${res.status}: ${res.body.toString().slice(0, 200)}`);
    message = await r.next(res.body);
  }
  const ms = performance.now() - t0;
  const rangeIds = r.needRanges.reduce((s, x) => s + x.count, 0);
  return {
    round_trips: r.stats.roundTrips,
    bytes_sent: r.stats.bytesSent,
    bytes_received: r.stats.bytesReceived,
    ms: Math.round(ms * 10) / 10,
    found_missing: r.need.length + rangeIds,
    found_extra: r.give.length + r.giveRanges.reduce((s, x) => s + x.count, 0),
  };
}

async function seedOnce(url: string, local: Awaited<ReturnType<typeof buildSeedIndex>>): Promise<Record<string, number>> {
  const t0 = performance.now();
  let sent = 0;
  let received = 0;
  let trips = 0;
  const index = await post(`${url}/seed/index`, undefined, 'GET');
  trips++;
  received += index.body.length;
  const { buckets } = JSON.parse(index.body.toString('utf8')) as { buckets: [number, string][] };
  const empty = createHash('md5').digest('hex');
  let refetched = 0;
  for (const [b, hash] of buckets) {
    if ((local.hashes.get(b) ?? empty) === hash) continue;
    const path_ = `/seed/bucket?b=${b}`;
    sent += path_.length; // the request line is the only thing a GET sends beyond headers
    const res = await post(`${url}${path_}`, undefined, 'GET');
    trips++;
    received += res.body.length;
    refetched += (JSON.parse(res.body.toString('utf8')) as { entries: unknown[] }).entries.length;
  }
  return {
    round_trips: trips,
    bytes_sent: sent,
    bytes_received: received,
    ms: Math.round((performance.now() - t0) * 10) / 10,
    buckets: SEED_BUCKETS,
    entries_refetched: refetched,
  };
}

/** A full GC, so memory deltas measure what stays reachable (the flag is set before first use). */
function collect(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

function memory(): { heap_external_mb: number; rss_mb: number } {
  collect();
  const m = process.memoryUsage();
  // The prefix trees are typed arrays: their bytes are "external", not heapUsed.
  return { heap_external_mb: (m.heapUsed + m.external) / 2 ** 20, rss_mb: m.rss / 2 ** 20 };
}

const mb = (x: number) => Math.round(x * 10) / 10;

export async function benchSync(opts: SyncBenchOptions = {}): Promise<object[]> {
  const ns = opts.ns ?? [100_000, 1_000_000];
  // Ascending, so one pair of copies serves every d: the far side gains d - (previous d) entries.
  const ds = [...(opts.ds ?? [0, 1, 100, 10_000])].sort((a, b) => a - b);
  const prefill = { tables: opts.tables ?? 1 };
  const rows: object[] = [];
  for (const n of ns) {
    const root = path.join(tmpdir(), `p2pdb-bench-sync-${process.pid}-${n}`);
    const far = path.join(root, 'far');
    const near = path.join(root, 'near');
    mkdirSync(far, { recursive: true });
    mkdirSync(near, { recursive: true });
    try {
      await copyPrefilled(n, path.join(far, 'p2pdb.sqlite'), prefill);
      await copyPrefilled(n, path.join(near, 'p2pdb.sqlite'), prefill);
      const nearFile = path.join(near, 'p2pdb.sqlite');
      let o0 = performance.now();
      let store = await openStore({ filename: nearFile, durability: 'normal' });
      const firstOpenMs = performance.now() - o0;
      const before = memory();
      // No DATA/sync-index.bin in a copied store: this is the full rebuild from the store.
      const t0 = performance.now();
      let index = await SyncIndex.open({ store, dataDir: near });
      const indexMs = performance.now() - t0;
      const after = memory();
      process.stderr.write(`sync: n=${n} near index rebuilt in ${Math.round(indexMs)} ms\n`);
      // Same seed → same table keys as the prefill; another stream → new ids.
      const extra = new SyntheticEntries(prefill, 'extra');
      let added = 0;
      try {
        for (const d of ds) {
          await addExtra(far, d - added, extra);
          added = d;
          // The far side's first start rebuilds its index; later ones load the snapshot it wrote.
          const s0 = performance.now();
          const server = await spawnChild(['sync-server', far]);
          const farStartMs = Math.round(performance.now() - s0);
          try {
            // Twice: the first run warms both processes; the second is the one recorded.
            await reconcileOnce(server.url, index);
            const p2pdb = await reconcileOnce(server.url, index);
            rows.push({ bench: 'sync', approach: 'p2pdb', n, d, tables: prefill.tables, ...p2pdb, index_open_ms: Math.round(indexMs), far_start_ms: farStartMs });
            process.stderr.write(`sync: n=${n} d=${d} p2pdb ${JSON.stringify(p2pdb)}\n`);
            if (opts.seed !== false) {
              const l0 = performance.now();
              const local = await buildSeedIndex(store);
              const localMs = performance.now() - l0;
              const seed = await seedOnce(server.url, local);
              rows.push({ bench: 'sync', approach: 'seed', n, d, tables: prefill.tables, ...seed, local_index_ms: Math.round(localMs) });
              process.stderr.write(`sync: n=${n} d=${d} seed ${JSON.stringify(seed)}\n`);
            }
          } finally {
            await server.stop();
          }
        }
        // A restart of the near side: close writes the snapshot, open loads it (the node's start-up path).
        const w0 = performance.now();
        await index.close();
        const snapshotWriteMs = performance.now() - w0;
        await store.close();
        const snapshotBytes = statSync(path.join(near, SNAPSHOT_FILE)).size;
        o0 = performance.now();
        store = await openStore({ filename: nearFile, durability: 'normal' });
        const reopenMs = performance.now() - o0;
        const r0 = performance.now();
        index = await SyncIndex.open({ store, dataDir: near });
        const loadMs = performance.now() - r0;
        rows.push({
          bench: 'sync-index',
          n,
          tables: prefill.tables,
          rebuild_ms: Math.round(indexMs),
          rebuild_entries_per_s: Math.round(n / (indexMs / 1000)),
          heap_external_delta_mb: mb(after.heap_external_mb - before.heap_external_mb),
          rss_delta_mb: mb(after.rss_mb - before.rss_mb),
          rss_after_mb: mb(after.rss_mb),
          snapshot_write_ms: Math.round(snapshotWriteMs),
          snapshot_bytes: snapshotBytes,
          first_open_store_ms: Math.round(firstOpenMs),
          restart_open_store_ms: Math.round(reopenMs),
          restart_index_from_snapshot_ms: Math.round(loadMs),
        });
      } finally {
        await index.close();
        await store.close();
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }
  return rows;
}
