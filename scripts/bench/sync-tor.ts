/**
 * `npm run bench -- sync-tor [--n N]`: sync over the private Tor network on 127.0.0.1, with the
 * node's real path (SOCKS agent → tor → onion service). Two nodes publish onion services; the
 * empty one bootstraps N valid entries from the full one, then reconciles again with d = 0 and
 * with d = 1 (one entry put on the full node). Each row has bytes, round trips and wall time.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { resolveConfig } from '../../src/config/config.js';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { createEntry } from '../../src/client/write.js';
import { entryToJson } from '../../src/entry/wire.js';
import { mintProof } from '../../src/pow/mint.js';
import { startNode, type RunningNode } from '../../src/node/node.js';
import { startTestnet, type Testnet } from '../../src/tor/testnet.js';
import { waitFor } from '../../src/tor/wait.js';
import { silentLogger } from '../../src/util/log.js';
import { BENCH_POW_BITS } from './fixtures.js';
import { copyValidStore, validStoreKeys } from './valid-store.js';

export async function benchSyncTor(opts: { n?: number } = {}): Promise<object[]> {
  const n = opts.n ?? 20_000;
  const dir = mkdtempSync(path.join(tmpdir(), 'p2pdb-bench-sync-tor-'));
  const rows: object[] = [];
  let net: Testnet | undefined;
  const nodes: RunningNode[] = [];
  try {
    // A fresh entry for one of the store's own tables, to make d = 1 later.
    const keys = await validStoreKeys(n);
    const made = await createEntry({
      tablePrivateKey: createPrivateKey(keys.tablePems[0]!),
      recipientPublicKey: createPublicKey(keys.recipientPems[0]!),
      plaintext: Buffer.from('d = 1'),
      powBits: BENCH_POW_BITS,
      mint: async (x, b) => mintProof(x, b),
    });

    await copyValidStore(n, path.join(dir, 'full', 'p2pdb.sqlite'));
    const t0 = performance.now();
    net = await startTestnet({ dir: path.join(dir, 'tor') });
    const netMs = performance.now() - t0;
    const start = (name: string, peers: string[]) =>
      startNode(
        resolveConfig({
          dataDir: path.join(dir, name),
          port: 0,
          powBits: BENCH_POW_BITS,
          tor: 'managed',
          torExtraLines: net!.networkTorrcLines(),
          peers,
          peeringIntervalMs: 2000,
          // The benchmark starts every sync itself (0: no background sync).
          syncIntervalMs: 0,
        }),
        { log: silentLogger },
      );
    const full = await start('full', []);
    nodes.push(full);
    await waitFor(() => full.onion!.state().published, { timeoutMs: 120_000, what: 'the full node onion service' });
    const empty = await start('empty', [full.onion!.address]);
    nodes.push(empty);
    await waitFor(async () => (await empty.peers!.get(full.onion!.address))?.verified === true, {
      timeoutMs: 180_000,
      what: 'the empty node to verify the full one over tor',
    });
    process.stderr.write(`sync-tor: network ${Math.round(netMs)} ms; nodes up and acquainted\n`);

    const run = async (what: string, d: number | null) => {
      const report = await empty.sync!.syncNow(full.onion!.address);
      const row = {
        bench: 'sync-tor',
        what,
        n,
        ...(d === null ? {} : { d }),
        round_trips: report.roundTrips,
        bytes_sent: report.bytesSent,
        bytes_received: report.bytesReceived,
        stored: report.stored,
        ms: report.durationMs,
        ...(what === 'bootstrap' ? { entries_per_s: Math.round(report.stored / (report.durationMs / 1000)) } : {}),
      };
      process.stderr.write(`sync-tor: ${JSON.stringify(row)}\n`);
      rows.push(row);
    };
    await run('bootstrap', null);
    if ((await empty.store.count()) !== n) throw new Error(`bootstrap over tor stored ${await empty.store.count()} of ${n}`);
    await run('reconcile', 0);
    // Measure reconciliation, not the fresh-entry push that would otherwise deliver it first.
    await full.sync!.push.stop();
    const put = await fetch(`${full.url}/put/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([entryToJson(made.entry, made.id)]),
    });
    if (!put.ok) throw new Error(`put on the full node answered ${put.status}`);
    await run('reconcile', 1);
    if ((await empty.store.count()) !== n + 1) throw new Error('the d = 1 entry did not arrive');
    return rows;
  } finally {
    await Promise.allSettled(nodes.map((x) => x.close()));
    await net?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
