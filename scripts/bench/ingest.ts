/**
 * Verified ingest: entries per second through the node's full check-and-store path,
 * in-process (Ingestor → store) and over HTTP (batched POST /put/ to a node in another
 * process), into an empty store and into one already holding `stored` entries.
 * Single-entry puts are measured beside a bare Koa POST handler in the same run.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Ingestor } from '../../src/ingest/ingest.js';
import { openStore } from '../../src/store/open.js';
import { benchDatabase, type BenchBackend } from './database.js';
import { BENCH_POW_BITS, benchEntries } from './fixtures.js';
import { spawnChild } from './child.js';
import { round, runLoad } from './load.js';

function freshDir(tag: string): string {
  const dir = path.join(tmpdir(), `p2pdb-bench-${tag}-${process.pid}-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

export interface IngestOptions {
  entries?: number;
  batch?: number;
  stored?: number[];
  inFlight?: number;
  backend?: BenchBackend;
}

export async function benchIngest(opts: IngestOptions = {}): Promise<object[]> {
  const n = opts.entries ?? 40_000;
  const batch = opts.batch ?? 500;
  const inFlight = opts.inFlight ?? 4;
  const backend = opts.backend ?? 'sqlite';
  const { entries } = await benchEntries(n);
  const out: object[] = [];

  for (const stored of opts.stored ?? [0, 1_000_000]) {
    // In-process: the same Ingestor the HTTP route uses, on a real database.
    {
      const db = await benchDatabase(backend, stored, 'inproc');
      const store = await openStore({ database: db.locator });
      const ingestor = new Ingestor({
        store,
        policy: { allowedTables: '*', powBits: BENCH_POW_BITS, maxPayloadBytes: 65536, maxFutureSkewMs: 300_000 },
      });
      let next = 0;
      let stored_ = 0;
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: inFlight }, async () => {
          while (next < entries.length) {
            const slice = entries.slice(next, (next += batch));
            for (const r of await ingestor.ingest(slice)) if ('status' in r && r.status === 'stored') stored_++;
          }
        }),
      );
      const seconds = (performance.now() - t0) / 1000;
      await store.close();
      await db.remove();
      if (stored_ !== entries.length) throw new Error(`in-process ingest stored ${stored_} of ${entries.length}`);
      out.push({ bench: 'ingest', backend, via: 'in-process', stored_before: stored, entries: n, batch, in_flight: inFlight, seconds: round(seconds, 3), entries_per_s: round(n / seconds) });
    }
    // Over HTTP: batched puts to a node in its own process.
    {
      const db = await benchDatabase(backend, stored, 'http');
      const node = await spawnChild(['node', db.dir, String(BENCH_POW_BITS), ...(db.database ? [db.database] : [])]);
      // Steady state: the copied store has no sync index snapshot, so the node builds its index
      // first (GET /index/ answers busy until then); that is start-up, measured by bench get.
      await untilIndexReady(node.url);
      const bodies: Buffer[] = [];
      for (let i = 0; i < entries.length; i += batch) bodies.push(Buffer.from(JSON.stringify(entries.slice(i, i + batch))));
      // The first tenth warms the node (workers, key caches, SQLite's page cache) and is not counted.
      const warm = Math.max(1, Math.floor(bodies.length / 10));
      await runLoad(node.url, (i) => ({ method: 'POST', path: '/put/', body: bodies[i]! }), warm, inFlight);
      const measured = bodies.slice(warm);
      const res = await runLoad(node.url, (i) => ({ method: 'POST', path: '/put/', body: measured[i]! }), measured.length, inFlight);
      const counted = measured.reduce((n, b) => n + (b === bodies[bodies.length - 1] ? entries.length - (bodies.length - 1) * batch : batch), 0);
      await node.stop();
      await db.remove();
      if (res.statuses['200'] !== measured.length) throw new Error(`batched puts answered ${JSON.stringify(res.statuses)}`);
      out.push({ bench: 'ingest', backend, via: 'http-batch', stored_before: stored, entries: counted, warmup_entries: warm * batch, batch, in_flight: inFlight, seconds: res.seconds, entries_per_s: round(counted / res.seconds), batch_p50_ms: res.p50_ms, batch_p99_ms: res.p99_ms });
    }
  }
  return out;
}

async function untilIndexReady(url: string): Promise<void> {
  for (;;) {
    const res = await fetch(`${url}/index/`);
    await res.arrayBuffer();
    if (res.status !== 503) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Single-entry puts per second, beside a bare Koa POST handler measured the same way. */
export async function benchSinglePut(opts: { entries?: number; concurrency?: number } = {}): Promise<object[]> {
  const n = Math.min(opts.entries ?? 20_000, 40_000);
  const concurrency = opts.concurrency ?? 32;
  const { entries } = await benchEntries(40_000);
  const bodies = entries.slice(0, n).map((e) => ({ path: `/put/${e.id}`, body: Buffer.from(JSON.stringify(e)) }));
  const out: object[] = [];

  const bare = await spawnChild(['bare-koa']);
  const b = await runLoad(bare.url, (i) => ({ method: 'POST', path: bodies[i]!.path, body: bodies[i]!.body }), n, concurrency);
  await bare.stop();
  out.push({ bench: 'put-single', server: 'bare-koa-json', requests: n, concurrency, per_s: b.per_s, p50_ms: b.p50_ms, p99_ms: b.p99_ms });

  const dir = freshDir('single');
  const node = await spawnChild(['node', dir, String(BENCH_POW_BITS)]);
  const r = await runLoad(node.url, (i) => ({ method: 'POST', path: bodies[i]!.path, body: bodies[i]!.body }), n, concurrency);
  await node.stop();
  rmSync(dir, { recursive: true, force: true });
  if (r.statuses['201'] !== n) throw new Error(`single puts answered ${JSON.stringify(r.statuses)}`);
  out.push({ bench: 'put-single', server: 'p2pdb', requests: n, concurrency, per_s: r.per_s, p50_ms: r.p50_ms, p99_ms: r.p99_ms, vs_bare_koa: round(r.per_s / b.per_s, 3) });
  return out;
}
