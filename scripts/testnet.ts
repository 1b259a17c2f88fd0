/**
 * `npm run testnet`: p2pdb offline, for real. Starts a private Tor network on 127.0.0.1
 * (one directory authority, five relays), three p2pdb nodes that each run their own tor and
 * publish an onion service (A knows B, B knows C), and one tor for you with a SOCKS port.
 * Once the nodes have found each other it prints each node's onion address and local URL,
 * and the SOCKS port for a browser or `curl --socks5-hostname`. Ctrl-C stops everything.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { resolveConfig } from '../src/config/config.js';
import { startNode, type RunningNode } from '../src/node/node.js';
import { startTestnet, type Testnet } from '../src/tor/testnet.js';
import { waitFor } from '../src/tor/wait.js';
import { createLogger } from '../src/util/log.js';

const say = (line: string) => process.stdout.write(line + '\n');
const dir = mkdtempSync(path.join(tmpdir(), 'p2pdb-testnet-demo-'));
const log = process.env.P2PDB_LOG ? createLogger() : createLogger(() => undefined);
let net: Testnet | undefined;
const nodes: RunningNode[] = [];
let you: { socksPort: number; stop(): Promise<void> } | undefined;
let stopping: Promise<void> | undefined;

function stop(code: number): Promise<void> {
  stopping ??= (async () => {
    say('stopping…');
    await Promise.allSettled(nodes.map((n) => n.close()));
    await you?.stop();
    await net?.stop();
    if (!process.env.P2PDB_KEEP_TMP) rmSync(dir, { recursive: true, force: true });
    process.exit(code);
  })();
  return stopping;
}
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));

try {
  const t0 = Date.now();
  say('starting a private Tor network on 127.0.0.1 (about 20–40 s)…');
  net = await startTestnet({ dir: path.join(dir, 'tor') });
  say(`network usable after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  for (const name of ['c', 'b', 'a']) {
    const peers = nodes.length > 0 ? [nodes[nodes.length - 1]!.onion!.address] : [];
    const node = await startNode(
      resolveConfig({
        dataDir: path.join(dir, `node-${name}`),
        port: 0,
        tor: 'managed',
        torExtraLines: net.networkTorrcLines(),
        peers,
        peeringIntervalMs: 2000,
      }),
      { log },
    );
    nodes.push(node);
    await waitFor(() => node.onion!.state().published, { timeoutMs: 120_000, what: `node ${name}'s onion service` });
  }
  you = await net.startClientTor('you');
  await waitFor(
    async () => {
      for (const n of nodes) {
        const verified = (await n.peers!.list()).filter((p) => p.verified).length;
        if (verified < nodes.length - 1) return false;
      }
      return true;
    },
    { timeoutMs: 180_000, what: 'the three nodes to find each other' },
  );
  say(`\nthree p2pdb nodes found each other (${((Date.now() - t0) / 1000).toFixed(1)} s from start):`);
  for (const [i, n] of [...nodes].reverse().entries()) {
    say(`  node ${'ABC'[i]}  http://${n.onion!.address}/   local ${n.url}   data ${n.config.dataDir}`);
  }
  say(`\nsocks 127.0.0.1:${you.socksPort}`);
  say(`  try: curl --socks5-hostname 127.0.0.1:${you.socksPort} http://${nodes[2]!.onion!.address}/hello/`);
  say(`  or point a browser's SOCKS5 proxy (with remote DNS) at 127.0.0.1:${you.socksPort}`);
  say('\nCtrl-C stops every node and tor process.');
} catch (e) {
  process.stderr.write(`testnet: ${(e as Error).message}\n`);
  await stop(1);
}
