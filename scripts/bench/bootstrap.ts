/**
 * `npm run bench -- bootstrap [--n N]`: an empty node pulls every entry of a full one over
 * loopback HTTP with the node's own sync session (reconcile → range pages → Ingestor, so every
 * entry is verified exactly as a put: id, policy, proof, signature), and stores them durably.
 * The full node is a real p2pdb node in its own process; the empty side runs here, wired as
 * startNode wires it, except that its transport is plain loopback HTTP instead of tor (the node
 * itself never builds such a transport).
 */
import http from 'node:http';
import { mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { resolveConfig } from '../../src/config/config.js';
import { CheckPool } from '../../src/ingest/check-pool.js';
import { Ingestor } from '../../src/ingest/ingest.js';
import { policyFromConfig } from '../../src/node/node.js';
import type { RangeCursorRecord } from '../../src/store/sync-state.js';
import { openSqliteStore as openStore } from '../../src/store/sqlite/open.js';
import { Reconciliation } from '../../src/sync/reconcile.js';
import { runSyncSession, type CursorStore } from '../../src/sync/session.js';
import { SyncIndex } from '../../src/sync/sync-index.js';
import { httpSyncTransport, type RawRequester } from '../../src/sync/transport.js';
import { spawnChild } from './child.js';
import { BENCH_POW_BITS } from './fixtures.js';
import { copyValidStore } from './valid-store.js';

/** Benchmark-only: the same requests the node sends through tor, sent straight to a loopback URL. */
function loopbackRequester(base: string): RawRequester {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  return (req) =>
    new Promise((resolve, reject) => {
      const r = http.request(new URL(req.path, base), {
        method: req.method,
        agent,
        headers: {
          ...(req.body ? { 'content-type': req.contentType ?? 'application/octet-stream', 'content-length': req.body.length } : {}),
          ...(req.accept ? { accept: req.accept } : {}),
        },
      });
      r.on('error', reject);
      r.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      r.end(req.body);
    });
}

/** The full node builds its sync index from the copied store at start and answers `busy` till then. */
async function indexReady(base: string, timeoutMs = 30 * 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await fetch(new URL('/index/', base)).catch(() => null);
    await res?.arrayBuffer();
    if (res?.status === 200) return;
    if (Date.now() > deadline) throw new Error(`the full node's sync index was not ready within ${timeoutMs} ms (last status ${res?.status ?? 'none'})`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function memoryCursors(): CursorStore {
  const cursors = new Map<string, RangeCursorRecord>();
  const key = (peer: string, table: Buffer, prefix: string) => `${peer}/${table.toString('hex')}/${prefix}`;
  return {
    rangeCursors: async (peer) => [...cursors.values()].filter((c) => c.peer === peer),
    saveRangeCursor: async (c) => void cursors.set(key(c.peer, c.table, c.prefix), c),
    clearRangeCursor: async (peer, table, prefix) => void cursors.delete(key(peer, table, prefix)),
  };
}

export async function benchBootstrap(opts: { n?: number; verifyThreads?: number } = {}): Promise<object[]> {
  const n = opts.n ?? 1_000_000;
  const root = path.join(tmpdir(), `p2pdb-bench-bootstrap-${process.pid}`);
  const fullDir = path.join(root, 'full');
  const emptyDir = path.join(root, 'empty');
  mkdirSync(fullDir, { recursive: true });
  mkdirSync(emptyDir, { recursive: true });
  try {
    await copyValidStore(n, path.join(fullDir, 'p2pdb.sqlite'));
    const full = await spawnChild(['node', fullDir, String(BENCH_POW_BITS)]);
    await indexReady(full.url);
    const config = resolveConfig({ dataDir: emptyDir, port: 0, powBits: BENCH_POW_BITS });
    const policy = policyFromConfig(config);
    // As a node: durable commits (fsync), verification in worker threads.
    const store = await openStore({ filename: path.join(emptyDir, 'p2pdb.sqlite'), durability: config.durability });
    const checker = new CheckPool(policy, opts.verifyThreads);
    const ingestor = new Ingestor({ store, policy, checker });
    const index = await SyncIndex.open({ store, dataDir: emptyDir });
    const scope = { mirrors: () => true };
    let lastPrint = 0;
    const t0 = performance.now();
    try {
      const report = await runSyncSession({
        peer: 'bench-full-node',
        transport: httpSyncTransport(loopbackRequester(full.url)),
        ingest: (raw, request, beforeStore) => ingestor.ingestPeerBody(raw, request, beforeStore),
        ranges: store.ranges,
        cursors: memoryCursors(),
        tables: [],
        allTables: true,
        mirrors: () => true,
        reconciler: (o) => new Reconciliation(index.view, { ...o, scope }),
        peerRequiresAtLeastOurBits: true,
        onProgress: (p) => {
          const now = performance.now();
          if (now - lastPrint > 5000) {
            lastPrint = now;
            process.stderr.write(`bootstrap: ${p.stored}/${p.total} stored (${Math.round(p.stored / ((now - t0) / 1000))}/s)\n`);
          }
        },
      });
      const seconds = (performance.now() - t0) / 1000;
      const stored = await store.count();
      if (stored !== n) throw new Error(`bootstrap stored ${stored} of ${n} entries`);
      return [
        {
          bench: 'bootstrap',
          n,
          stored,
          rejected: report.rejected,
          seconds: Math.round(seconds * 10) / 10,
          entries_per_s: Math.round(stored / seconds),
          // Reconciliation messages only (range pages are the entries themselves).
          reconcile_bytes_received: report.bytesReceived,
          reconcile_bytes_sent: report.bytesSent,
          reconcile_round_trips: report.roundTrips,
          verify_threads: opts.verifyThreads ?? 'default (cores - 1)',
          durability: config.durability,
          pow_bits: BENCH_POW_BITS,
        },
      ];
    } finally {
      await ingestor.close();
      await index.close();
      await store.close();
      await full.stop();
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
