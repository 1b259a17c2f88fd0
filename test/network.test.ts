/**
 * Three real nodes (startNode with their own managed tor on the private network) find each
 * other through signed hellos over onion services: A knows only B, B knows only C.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readNodeStatus } from '../src/node/status-file.js';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { resolveConfig } from '../src/config/config.js';
import { parsePublicKey } from '../src/crypto/keys.js';
import { startNode, type RunningNode } from '../src/node/node.js';
import { peerAgent } from '../src/tor/socks.js';
import { waitFor } from '../src/tor/wait.js';
import { createLogger, silentLogger } from '../src/util/log.js';
import { testKey } from './helpers/entries.js';
import { httpGet, useTestnet } from './helpers/testnet.js';
import { tempDir } from './helpers/tmp.js';

const testnet = useTestnet();
const nodes: RunningNode[] = [];
const tableX = parsePublicKey(testKey().publicPem).fingerprint.toString('hex');

async function startOnionNode(peers: string[], allowedTables: '*' | string[]): Promise<RunningNode> {
  const net = await testnet;
  const node = await startNode(
    resolveConfig({
      dataDir: tempDir('p2pdb-net-'),
      port: 0,
      powBits: 12,
      tor: 'managed',
      torExtraLines: net.networkTorrcLines(),
      peers,
      allowedTables,
      peeringIntervalMs: 1000,
    }),
    { log: process.env.P2PDB_TEST_LOG ? createLogger() : silentLogger },
  );
  nodes.push(node);
  // Wait until tor has uploaded the descriptor, so the next node's first hello can land.
  await waitFor(() => node.onion!.state().published, { timeoutMs: 90_000, what: 'onion published' });
  return node;
}

before(async () => {
  await testnet;
});
after(async () => {
  await Promise.all(nodes.map((n) => n.close()));
});

test('three onion nodes discover each other: A knows B, B knows C, A learns and verifies C', async () => {
  const c = await startOnionNode([], [tableX]);
  const b = await startOnionNode([c.onion!.address], '*');
  const a = await startOnionNode([b.onion!.address], '*');
  const all = [a, b, c];
  await waitFor(
    async () => {
      for (const n of all) {
        // Reached by n itself (its own dial answered): what a peer list may name (PeerTable.listable).
        const reached = (await n.peers!.list()).filter((p) => p.verified && p.lastAttempt !== null && p.failures === 0).map((p) => p.onion);
        const others = all.filter((o) => o !== n).map((o) => o.onion!.address);
        if (!others.every((o) => reached.includes(o))) return false;
      }
      return true;
    },
    { timeoutMs: 120_000, what: 'every node has reached the other two itself' },
  );
  const learned = (await a.peers!.list()).find((p) => p.onion === c.onion!.address)!;
  // A was told only about B: it knows C either from B's peer list or from C's own hello to A
  // (C learns A from B too), whichever came first.
  assert.ok(['learned', 'hello'].includes(learned.source), `A's record of C came from ${learned.source}`);
  assert.deepEqual(learned.tables, [tableX], "C's tables come from C's own signed hello");

  // Over Tor, B's hello filtered by table X names C (which mirrors only X) and A (which mirrors '*').
  const agent = peerAgent(a.onion!.socksPort);
  try {
    const filtered = JSON.parse((await httpGet(`http://${b.onion!.address}/hello/?tables=${tableX}`, agent)).body);
    assert.equal(filtered.onion, b.onion!.address);
    const names = filtered.peers.map((p: { onion: string }) => p.onion).sort();
    assert.deepEqual(names, [a.onion!.address, c.onion!.address].sort());
    const other = parsePublicKey(testKey().publicPem).fingerprint.toString('hex');
    const narrow = JSON.parse((await httpGet(`http://${b.onion!.address}/hello/?tables=${other}`, agent)).body);
    assert.deepEqual(narrow.peers.map((p: { onion: string }) => p.onion), [a.onion!.address], 'C does not mirror that table');
  } finally {
    agent.destroy();
  }

  // p2pdb status shows the onion address, Tor's bootstrap state and the peers with their last contact.
  const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
  // The node refreshes DATA/status.json twice a second; wait for it to catch up with the state.
  await waitFor(() => readNodeStatus(a.config.dataDir)?.tor.published === true, { timeoutMs: 10_000, what: 'status.json says published' });
  // Asynchronously: the nodes live in this process and must keep answering.
  const { stdout: out } = await promisify(execFile)(process.execPath, [cli, 'status', '--node', a.url, '--data', a.config.dataDir], {
    env: { ...process.env, P2PDB_HOME: tempDir('p2pdb-status-home-') },
    encoding: 'utf8',
  });
  assert.match(out, new RegExp(`onion +${a.onion!.address}`));
  assert.match(out, /bootstrap +100%/);
  assert.match(out, /onion service +published/);
  assert.match(out, /peers +2 verified/);
  assert.match(out, new RegExp(`${c.onion!.address} .*last contact \\d+ (s|min) ago`));
});
