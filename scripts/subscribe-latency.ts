/**
 * How long an entry takes from its commit to a subscriber of GET /subscribe/, on loopback.
 * A real node (SQLite, HTTP) and S subscribers in this process (which makes it pessimistic:
 * they share the node's event loop). Prints one JSON line per measurement.
 *
 *   npm run build && node dist/scripts/subscribe-latency.js [ENTRIES]
 */
import { performance } from 'node:perf_hooks';
import { createEntry } from '../src/client/write.js';
import { subscribeEntries } from '../src/client/subscribe.js';
import { generateKeys } from '../src/client/keys.js';
import { resolveConfig } from '../src/config/config.js';
import { mintProof } from '../src/pow/mint.js';
import { entryToJson } from '../src/entry/wire.js';
import { startNode } from '../src/node/node.js';
import { silentLogger } from '../src/util/log.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const ENTRIES = Number(process.argv[2] ?? 100);
const dir = mkdtempSync(path.join(tmpdir(), 'p2pdb-sub-bench-'));
const node = await startNode(resolveConfig({ dataDir: dir, port: 0, powBits: 4 }), {
  log: silentLogger,
  subscribe: { maxSubscribers: 1000 },
});
const [table, alice] = await Promise.all([generateKeys(), generateKeys()]);
const made = [];
const ROUNDS = [1, 50, 200];
for (let i = 0; i < ENTRIES * ROUNDS.length; i++) {
  const { entry, id } = await createEntry({
    tablePrivateKey: table.privateKey,
    recipientPublicKey: alice.publicKey,
    plaintext: Buffer.from(`entry ${i}`),
    powBits: 4,
    mint: async (x, b) => mintProof(x, b),
  });
  made.push({ json: entryToJson(entry), id: id.toString('hex') });
}
const committedAt = new Map<string, number>();
node.store.onStored((notices) => {
  const t = performance.now();
  for (const n of notices) committedAt.set(n.entry.id.toString('hex'), t);
});

function summary(ms: number[]) {
  const s = [...ms].sort((a, b) => a - b);
  const q = (p: number) => Math.round(s[Math.min(s.length - 1, Math.floor(p * s.length))]! * 100) / 100;
  return { p50_ms: q(0.5), p99_ms: q(0.99), max_ms: q(1) };
}

let offset = 0;
for (const subscribers of ROUNDS) {
  const stops: AbortController[] = [];
  const latencies: number[] = [];
  let opened = 0;
  const arrivals = new Map<string, number>();
  const runs = Array.from({ length: subscribers }, () =>
    (async () => {
      const stop = new AbortController();
      stops.push(stop);
      for await (const e of subscribeEntries(node.url, { recipients: [alice.fingerprint] }, { signal: stop.signal, onOpen: () => opened++ })) {
        const t = performance.now();
        latencies.push(t - committedAt.get(e.id)!);
        arrivals.set(e.id, (arrivals.get(e.id) ?? 0) + 1);
      }
    })(),
  );
  while (opened < subscribers) await new Promise((r) => setTimeout(r, 5));
  // One at a time: each entry is put once the previous one reached every subscriber.
  const batch = made.slice(offset, offset + ENTRIES / 2);
  offset += ENTRIES / 2;
  for (const m of batch) {
    const res = await fetch(`${node.url}/put/${m.id}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(m.json) });
    if (res.status !== 201) throw new Error(`put answered ${res.status}`);
    while ((arrivals.get(m.id) ?? 0) < subscribers) await new Promise((r) => setTimeout(r, 1));
  }
  console.log(JSON.stringify({ bench: 'subscribe_latency_single', subscribers, entries: batch.length, ...summary(latencies) }));
  // A burst: half as many entries in one batch request; latency of every delivery.
  latencies.length = 0;
  const burst = made.slice(offset, offset + ENTRIES / 2);
  offset += ENTRIES / 2;
  await fetch(`${node.url}/put/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(burst.map((m) => m.json)) });
  while (burst.some((m) => (arrivals.get(m.id) ?? 0) < subscribers)) await new Promise((r) => setTimeout(r, 1));
  console.log(JSON.stringify({ bench: 'subscribe_latency_burst', subscribers, entries: burst.length, ...summary(latencies) }));
  for (const stop of stops) stop.abort();
  await Promise.all(runs);
}
await node.close();
rmSync(dir, { recursive: true, force: true });
