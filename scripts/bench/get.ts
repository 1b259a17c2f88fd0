/**
 * /get/ latency (p50/p99) for each filter over HTTP, against a node already holding
 * `stored` entries. Filter values are sampled from the node itself so every query hits data.
 */
import { createHash } from 'node:crypto';
import { spawnChild, type ChildServer } from './child.js';
import { benchDatabase, type BenchBackend } from './database.js';
import { BENCH_POW_BITS, benchEntries } from './fixtures.js';
import { runLoad } from './load.js';

interface Sample {
  id: string;
  seq: string;
  to: string;
  table: string;
  received_at: number;
}

/** Starts the node on `dir`; ms until it listens and until its sync index answers (GET /index/ not busy). */
async function startTimed(args: string[]): Promise<{ node: ChildServer; listenMs: number; indexMs: number }> {
  const s0 = performance.now();
  const node = await spawnChild(args);
  const listenMs = Math.round(performance.now() - s0);
  for (;;) {
    const res = await fetch(`${node.url}/index/`);
    await res.arrayBuffer();
    if (res.status !== 503) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  return { node, listenMs, indexMs: Math.round(performance.now() - s0) };
}

export async function benchGet(opts: { stored?: number; requests?: number; concurrency?: number; backend?: BenchBackend } = {}): Promise<object[]> {
  const stored = opts.stored ?? 1_000_000;
  const requests = opts.requests ?? 2000;
  const concurrency = opts.concurrency ?? 1;
  const backend = opts.backend ?? 'sqlite';
  const db = await benchDatabase(backend, stored, 'get');
  const args = ['node', db.dir, String(BENCH_POW_BITS), ...(db.database ? [db.database] : [])];
  const out: object[] = [];
  // Start-up on a store without DATA/sync-index.bin (the index is rebuilt from the store's
  // indexes), then again with the snapshot the first run wrote when it stopped.
  let { node, listenMs, indexMs } = await startTimed(args);
  out.push({ bench: 'node-start', backend, stored, snapshot: false, listen_ms: listenMs, sync_index_ready_ms: indexMs });
  process.stderr.write(`get: node on ${stored} entries listening in ${listenMs} ms, sync index in ${indexMs} ms (no snapshot)\n`);
  await node.stop();
  ({ node, listenMs, indexMs } = await startTimed(args));
  out.push({ bench: 'node-start', backend, stored, snapshot: true, listen_ms: listenMs, sync_index_ready_ms: indexMs });
  const bytes = await db.bytesOnDisk();
  out.push({ bench: 'bytes-per-entry', backend, stored, bytes_on_disk: bytes, bytes_per_entry: Math.round(bytes / stored), entry_binary_bytes: ENTRY_BINARY_BYTES, ratio: Math.round((bytes / stored / ENTRY_BINARY_BYTES) * 1000) / 1000 });
  try {
    // A table none of the prefill's recipients has entries in: the disjoint tables + recipients case.
    const { entries: own } = await benchEntries(40_000);
    const ownTable = fpOf(own[0]!.table);
    const put = await fetch(`${node.url}/put/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(own.slice(0, 10)) });
    if (put.status !== 200) throw new Error(`seeding the disjoint table answered ${put.status}`);
    // Sample real rows from across the store.
    const samples: Sample[] = [];
    for (let k = 0; k < 20; k++) {
      const after = Math.floor(((k + 0.5) / 20) * stored);
      const res = (await (await fetch(`${node.url}/get/?after=${after}&limit=50`)).json()) as { entries: Sample[] };
      samples.push(...res.entries);
    }
    if (samples.length === 0) throw new Error('prefilled store returned no entries');
    const fp = fpOf;
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
      'tables + recipients, disjoint': (i) => `/get/?tables=${ownTable}&recipients=${pick(i).to}&limit=100`,
      'recipients (1), deep cursor': (i) => `/get/?recipients=${pick(i).to}&after=${Math.floor(stored * 0.95) + (i % 1000)}&limit=100`,
    };
    for (const [filter, q] of Object.entries(queries)) {
      await runLoad(node.url, (i) => ({ method: 'GET', path: q(i) }), 100, concurrency); // warm-up
      const r = await runLoad(node.url, (i) => ({ method: 'GET', path: q(i) }), requests, concurrency);
      if (r.statuses['200'] !== requests) throw new Error(`${filter}: ${JSON.stringify(r.statuses)}`);
      out.push({ bench: 'get', backend, filter, stored, requests, concurrency, p50_ms: r.p50_ms, p99_ms: r.p99_ms, per_s: r.per_s });
    }
    return out;
  } finally {
    await node.stop();
    await db.remove();
  }
}

/** An entry's own bytes as the prefill makes them: id 32, recipient 32, created_at and received_at 8 each, payload 600, signature 256, proof 128. */
export const ENTRY_BINARY_BYTES = 32 + 32 + 8 + 8 + 600 + 256 + 128;

function fpOf(b64: string): string {
  return createHash('sha256').update(Buffer.from(b64, 'base64')).digest('hex');
}
