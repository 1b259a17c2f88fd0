/**
 * The client library through the private Tor network: a user's own tor (SOCKS, socks5h) to a
 * node's onion address, subscribing and receiving a live entry, and writing through the onion.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { P2pdbClient, generateKeys, socksAgent, type VerifiedEntry } from '../src/client/index.js';
import { resolveConfig } from '../src/config/config.js';
import { startNode, type RunningNode } from '../src/node/node.js';
import type { ClientTor } from '../src/tor/testnet.js';
import { waitFor } from '../src/tor/wait.js';
import { silentLogger } from '../src/util/log.js';
import { useTestnet, waitForOnionAnswer } from './helpers/testnet.js';
import { tempDir } from './helpers/tmp.js';

const testnet = useTestnet();
let node: RunningNode;
let starting: Promise<RunningNode> | undefined;
let user: ClientTor;

before(async () => {
  const net = await testnet;
  // Kept, so after() stops the node even if the client tor fails to start.
  starting = startNode(resolveConfig({ dataDir: tempDir('p2pdb-ctor-'), port: 0, powBits: 8, tor: 'managed', torExtraLines: net.networkTorrcLines() }), {
    log: silentLogger,
  }).then((n) => (node = n));
  const [, clientTor] = await Promise.all([starting, net.startClientTor('clientlib')]);
  user = clientTor;
  await waitFor(() => node.onion!.state().published, { timeoutMs: 90_000, what: 'onion published' });
});
after(async () => {
  await (await starting?.catch(() => undefined))?.close();
});

test('subscribes to an onion through a SOCKS agent and receives a live entry; writes through the onion too', async () => {
  const agent = socksAgent(user.socksPort);
  const onionUrl = `http://${node.onion!.address}`;
  try {
    await waitForOnionAnswer(`${onionUrl}/hello/`, agent, 120_000);
    const overTor = new P2pdbClient(onionUrl, { agent, mintThreads: 1, timeoutMs: 60_000 });
    const local = new P2pdbClient(node.url, { mintThreads: 1 });
    const [table, alice] = await Promise.all([generateKeys(), generateKeys()]);
    const stop = new AbortController();
    const got: { entry: VerifiedEntry; at: number }[] = [];
    let opened = false;
    const consuming = (async () => {
      for await (const entry of overTor.subscribe({ recipients: [alice.fingerprint] }, { signal: stop.signal, onOpen: () => (opened = true) })) {
        got.push({ entry, at: Date.now() });
      }
    })();
    try {
      await waitFor(() => opened, { timeoutMs: 60_000, intervalMs: 20, what: 'the subscription over Tor to open' });
      const committedAt = Date.now();
      const put = await local.put({ table: table.privateKey, to: alice.publicKey, data: 'over tor' });
      await waitFor(() => got.length >= 1, { timeoutMs: 30_000, intervalMs: 10, what: 'the live entry over Tor' });
      assert.equal(got[0]!.entry.idHex, put.id);
      assert.equal(overTor.open(got[0]!.entry, alice.privateKey).toString(), 'over tor');
      // A measurement, not an assertion: put (mint + commit) to arrival over the onion.
      console.log(JSON.stringify({ measurement: 'subscribe_over_onion_put_to_arrival_ms', value: got[0]!.at - committedAt }));

      const viaOnion = await overTor.put({ table: table.privateKey, to: alice.publicKey, data: 'written over tor' });
      assert.equal(viaOnion.status, 'stored');
      await waitFor(() => got.length >= 2, { timeoutMs: 30_000, intervalMs: 10, what: 'the entry written over Tor' });
      assert.equal(got[1]!.entry.idHex, viaOnion.id);
    } finally {
      stop.abort();
      await consuming;
      await overTor.close();
      await local.close();
    }
  } finally {
    agent.destroy();
  }
});
