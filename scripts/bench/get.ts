/**
 * /get/ latency (p50/p99) for each filter over HTTP, against a node already holding
 * `stored` entries. Filter values are sampled from the node itself so every query hits data.
 */
import { copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawnChild } from './child.js';
import { BENCH_POW_BITS } from './fixtures.js';
import { runLoad } from './load.js';
import { cachedPrefill } from './prefill.js';

interface Sample {
  id: string;
  seq: string;
  to: string;
  table: string;
  received_at: number;
}

export async function benchGet(opts: { stored?: number; requests?: number; concurrency?: number } = {}): Promise<object[]> {
  const stored = opts.stored ?? 1_000_000;
  const requests = opts.requests ?? 2000;
  const concurrency = opts.concurrency ?? 1;
  const dir = path.join(tmpdir(), `p2pdb-bench-get-${process.pid}-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  const src = await cachedPrefill(stored);
  copyFileSync(src, path.join(dir, 'p2pdb.sqlite'));
  for (const ext of ['-wal', '-shm']) if (existsSync(src + ext)) copyFileSync(src + ext, path.join(dir, 'p2pdb.sqlite' + ext));
  // Start-up on a copied store without DATA/sync-index.bin: openStore, migrations and a full
  // sync index rebuild, until the node listens (a node restarting with its snapshot is faster).
  const s0 = performance.now();
  const node = await spawnChild(['node', dir, String(BENCH_POW_BITS)]);
  const startMs = Math.round(performance.now() - s0);
  process.stderr.write(`get: node started on ${stored} entries in ${startMs} ms (no index snapshot)\n`);
  try {
    // Sample real rows from across the store.
    const samples: Sample[] = [];
    for (let k = 0; k < 20; k++) {
      const after = Math.floor(((k + 0.5) / 20) * stored);
      const res = (await (await fetch(`${node.url}/get/?after=${after}&limit=50`)).json()) as { entries: Sample[] };
      samples.push(...res.entries);
    }
    if (samples.length === 0) throw new Error('prefilled store returned no entries');
    const fp = (b64: string) => createHash('sha256').update(Buffer.from(b64, 'base64')).digest('hex');
    const newest = Math.max(...samples.map((s) => s.received_at));
    const pick = (i: number) => samples[(i * 7919) % samples.length]!;
    const ageS = Math.ceil((Date.now() - newest) / 1000);
    const queries: Record<string, (i: number) => string> = {
      'after (cursor)': (i) => `/get/?after=${(i * 104729) % stored}&limit=100`,
      'ids (1)': (i) => `/get/?ids=${pick(i).id}`,
      'ids (100)': (i) => `/get/?ids=${Array.from({ length: 100 }, (_, k) => pick(i + k).id).join(',')}&limit=100`,
      'recipients (1), latest 100': (i) => `/get/?recipients=${pick(i).to}&limit=100`,
      'tables (1), 100 after a cursor': (i) => `/get/?tables=${fp(pick(i).table)}&after=${(i * 104729) % stored}&limit=100`,
      'seconds_since (newest 100)': () => `/get/?seconds_since=${ageS + 1}&limit=100`,
      'tables + recipients': (i) => `/get/?tables=${fp(pick(i).table)}&recipients=${pick(i).to}&limit=100`,
    };
    const out: object[] = [{ bench: 'get-node-start', stored, snapshot: false, ms: startMs }];
    for (const [filter, q] of Object.entries(queries)) {
      await runLoad(node.url, (i) => ({ method: 'GET', path: q(i) }), 100, concurrency); // warm-up
      const r = await runLoad(node.url, (i) => ({ method: 'GET', path: q(i) }), requests, concurrency);
      if (r.statuses['200'] !== requests) throw new Error(`${filter}: ${JSON.stringify(r.statuses)}`);
      out.push({ bench: 'get', filter, stored, requests, concurrency, p50_ms: r.p50_ms, p99_ms: r.p99_ms, per_s: r.per_s });
    }
    return out;
  } finally {
    await node.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
