/**
 * Peering over the private Tor network: three in-process nodes (hello routes + entry store +
 * peer table on one SQLite file each), each published as an onion with its own identity key
 * through its own client tor, dialing peers only through that tor's SOCKS port.
 * A is given B, B is given C; all three must end up knowing each other as verified peers.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import Koa from 'koa';
import { errorMiddleware, hardeningHeaders } from '../src/http/errors.js';
import { helloRoutes, type HelloInfo } from '../src/http/routes/hello.js';
import { newIdentity, torKeyBlob, type OnionIdentity } from '../src/identity/onion-key.js';
import { PeerClient, PeerRefusedError } from '../src/peers/peer-client.js';
import type { PeerSummary } from '../src/peers/peer-list.js';
import type { PeerTable } from '../src/store/peer-table.js';
import { startPeering, type Peering, type PeeringOptions } from '../src/peers/peering.js';
import { P2pdbError } from '../src/errors.js';
import { openStore } from '../src/store/open.js';
import type { Store } from '../src/store/types.js';
import { openPeerTable } from './helpers/backend.js';
import { TorControl } from '../src/tor/control.js';
import { freePort } from '../src/tor/ports.js';
import { peerAgent } from '../src/tor/socks.js';
import type { ClientTor } from '../src/tor/testnet.js';
import { waitFor } from '../src/tor/wait.js';
import { createLogger } from '../src/util/log.js';
import { useTestnet, withDeadline } from './helpers/testnet.js';
import { tempDir } from './helpers/tmp.js';

const testnet = useTestnet();

const T1 = 'a1'.repeat(32);
const T2 = 'b2'.repeat(32);

interface TestNode {
  name: string;
  identity: OnionIdentity;
  tor: ClientTor;
  control: TorControl;
  server: http.Server;
  store: Store;
  peers: PeerTable;
  agent: http.Agent;
  info: HelloInfo;
  /** HTTP requests that reached this node's server. */
  requests: number;
  peering?: Peering;
  published: number;
}

const nodes: TestNode[] = [];
const logs: string[] = [];
const log = createLogger((line) => logs.push(line), 'debug');
let setupMs = 0;

function info(tables: HelloInfo['tables']): HelloInfo {
  return {
    protocol: 'p2pdb/1',
    software: 'p2pdb/test',
    tables,
    pow_bits: 12,
    limits: { max_payload_bytes: 65536, max_body_bytes: 1 << 20, max_batch_entries: 100, max_future_skew_ms: 300000 },
  };
}

/** An in-process node published as its identity's onion; resolves once the descriptor is on an HSDir. */
async function startNode(name: string, tor: ClientTor, tables: HelloInfo['tables']): Promise<TestNode> {
  const identity = newIdentity();
  const filename = path.join(tempDir(`p2pdb-peer-${name}-`), 'p2pdb.sqlite');
  const store = await openStore({ database: { kind: 'sqlite', filename }, durability: 'normal' });
  const peers = store.peers({ self: identity.address });
  const node = { name, identity, tor, store, peers, info: info(tables), requests: 0 } as TestNode;
  const app = new Koa();
  app.silent = true;
  app.use(async (_ctx, next) => {
    node.requests++;
    await next();
  });
  app.use(errorMiddleware(log));
  app.use(hardeningHeaders());
  const router = helloRoutes({ info: node.info, identity, peerStore: peers });
  app.use(router.routes());
  app.use(router.allowedMethods({ throw: true }));
  node.server = http.createServer(app.callback());
  await new Promise<void>((resolve) => node.server.listen(0, '127.0.0.1', resolve));
  node.agent = peerAgent(tor.socksPort);

  node.control = await TorControl.connect({ port: tor.controlPort });
  const uploaded = new Set<string>();
  let onUpload = () => {};
  const off = node.control.onEvent('HS_DESC', (ev) => {
    const [action, id] = ev.text.split(' ');
    if (action === 'UPLOADED' && id) uploaded.add(id);
    onUpload();
  });
  await node.control.subscribe(['HS_DESC']);
  try {
    const port = (node.server.address() as AddressInfo).port;
    const onion = await node.control.addOnion({ keyBlob: torKeyBlob(identity.seed), virtualPort: 80, target: `127.0.0.1:${port}` });
    assert.equal(`${onion.serviceId}.onion`, identity.address, 'the onion is the identity key');
    await withDeadline(
      new Promise<void>((resolve) => {
        onUpload = () => uploaded.has(onion.serviceId) && resolve();
        onUpload();
      }),
      60_000,
      `${name}'s descriptor upload`,
    );
  } finally {
    off();
    await node.control.unsubscribe(['HS_DESC']);
  }
  node.published = Date.now();
  nodes.push(node);
  return node;
}

function peeringOptions(node: TestNode, bootstrapPeers: string[]): PeeringOptions {
  return {
    identity: node.identity,
    peerStore: node.peers,
    nodeInfo: node.info,
    agent: node.agent,
    bootstrapPeers,
    log,
    intervalMs: 500,
    // Short enough for a test: a first hello that fails while descriptors spread is retried within seconds,
    // and A greets B again soon after B has verified C.
    schedule: { refreshMs: 3_000, retryBaseMs: 1_000, maxBackoffMs: 4_000 },
    requestTimeoutMs: 30_000,
  };
}

let A: TestNode;
let B: TestNode;
let C: TestNode;

before(async () => {
  const net = await testnet;
  const started = Date.now();
  const [ta, tb, tc] = await Promise.all([net.startClientTor('peersA'), net.startClientTor('peersB'), net.startClientTor('peersC')]);
  [A, B, C] = await Promise.all([startNode('A', ta, '*'), startNode('B', tb, [T1]), startNode('C', tc, [T2])]);
  setupMs = Date.now() - started;
});

after(async () => {
  for (const n of nodes) await n.peering?.stop();
  for (const n of nodes) {
    n.agent.destroy();
    await n.control.delOnion(n.identity.address.replace(/\.onion$/, '')).catch(() => {});
    n.control.close();
    await new Promise<void>((resolve) => {
      n.server.close(() => resolve());
      n.server.closeAllConnections();
    });
    await n.store.close();
  }
});

async function verifiedPeers(n: TestNode): Promise<Set<string>> {
  return new Set((await n.peers.list()).filter((p) => p.verified).map((p) => p.onion));
}

/** Waits until each `[who, whom]` pair holds: `who` has verified `whom`. Returns when each pair first held (ms from `start`). */
async function untilVerified(pairs: [TestNode, TestNode][], start: number, timeoutMs: number, what: string): Promise<Map<string, number>> {
  const firstSeen = new Map<string, number>();
  try {
    await waitFor(
      async (note) => {
        const missing: string[] = [];
        for (const [who, whom] of pairs) {
          const key = `${who.name}→${whom.name}`;
          if ((await verifiedPeers(who)).has(whom.identity.address)) {
            if (!firstSeen.has(key)) firstSeen.set(key, Date.now() - start);
          } else missing.push(key);
        }
        note(`not yet verified: ${missing.join(', ')}`);
        return missing.length === 0;
      },
      { timeoutMs, intervalMs: 200, what },
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}\npeering log (last 40 lines):\n${logs.slice(-40).join('\n')}`);
  }
  return firstSeen;
}

const show = (m: Map<string, number>) => [...m].map(([k, ms]) => `${k} ${ms} ms`).join(', ');

test('A given B, B given C: within a deadline all three know each other as verified peers', async (t) => {
  const start = Date.now();
  // B and C first, so that C can only hear of A from A itself: C greets B back once (it is
  // new to C) and then not again for a minute, so it cannot pick A up from B's list first.
  B.peering = await startPeering(peeringOptions(B, [C.identity.address]));
  C.peering = await startPeering({ ...peeringOptions(C, []), schedule: { refreshMs: 60_000, retryBaseMs: 1_000, maxBackoffMs: 4_000 } });
  const bc = await untilVerified([[B, C], [C, B]], start, 60_000, 'waiting for B and C to verify each other');
  // C verified B when B's hello arrived; wait until C's own hello to B has succeeded too.
  await waitFor(
    async () => {
      const b = await C.peers.get(B.identity.address);
      return b !== undefined && b.lastAttempt !== null && b.failures === 0;
    },
    { timeoutMs: 60_000, intervalMs: 200, what: "waiting for C's hello to B to succeed" },
  );
  bc.set('C reached B', Date.now() - start);
  const aStart = Date.now();
  A.peering = await startPeering(peeringOptions(A, [`http://${B.identity.address}/`]));
  const everyone = [A, B, C];
  const pairs = everyone.flatMap((who) => everyone.filter((whom) => whom !== who).map((whom) => [who, whom] as [TestNode, TestNode]));
  const all = await untilVerified(pairs, aStart, 60_000, 'waiting for A, B and C to verify each other');
  const converged = Date.now() - aStart;

  // A never had C's address from configuration: it learned it from B's list, then verified it itself.
  const cAtA = await A.peers.get(C.identity.address);
  assert.equal(cAtA?.source, 'learned');
  assert.equal(cAtA?.verified, true);
  assert.deepEqual(cAtA?.tables, [T2], "C's tables come from C's own signed hello");
  assert.equal((await A.peers.get(B.identity.address))?.source, 'config');
  assert.equal((await C.peers.get(A.identity.address))?.source, 'hello', 'C first heard of A when A said hello');
  for (const n of everyone) assert.equal(await n.peers.get(n.identity.address), undefined, `${n.name} does not list itself`);

  t.diagnostic(
    `client tors + onions published: ${setupMs} ms; B↔C: ${show(bc)}; A started, then all six verified in ${converged} ms: ${show(all)}`,
  );
});

test('a table-filtered GET /hello/ over SOCKS lists only the peers carrying those tables', async (t) => {
  const client = new PeerClient({ agent: A.agent, timeoutMs: 30_000 });
  const started = Date.now();
  const listed = async (n: TestNode, tables?: string[]) =>
    ((await client.getHello(n.identity.address, tables)).peers as PeerSummary[]).map((p) => p.onion).sort();
  const sorted = (...ns: TestNode[]) => ns.map((n) => n.identity.address).sort();

  // /hello/ lists only peers a node reached itself (its latest hello to them answered), not
  // those that only said hello to it: wait until every node's own dial of the others succeeded.
  const everyone = [A, B, C];
  await waitFor(
    async (note) => {
      const pending: string[] = [];
      for (const who of everyone) {
        for (const whom of everyone.filter((n) => n !== who)) {
          const p = await who.peers.get(whom.identity.address);
          if (!p || p.lastAttempt === null || p.failures !== 0) pending.push(`${who.name}→${whom.name}`);
        }
      }
      note(`not reached yet: ${pending.join(', ')}`);
      return pending.length === 0;
    },
    { timeoutMs: 90_000, intervalMs: 200, what: 'every node to have reached the others itself' },
  );
  const all = await client.getHello(B.identity.address);
  assert.equal(all.onion, B.identity.address);
  assert.deepEqual(all.tables, [T1]);
  assert.deepEqual(await listed(B), sorted(A, C));
  assert.deepEqual(await listed(B, [T1]), sorted(A), "C does not carry T1; A carries '*'");
  assert.deepEqual(await listed(B, [T2]), sorted(A, C));
  assert.deepEqual(await listed(C, [T1, T2]), sorted(A), 'B carries T1 only');
  assert.deepEqual(await listed(A, [T1]), sorted(B));
  await assert.rejects(client.getHello(B.identity.address, ['xyz']), (err: unknown) => {
    assert.ok(err instanceof PeerRefusedError, String(err));
    assert.equal(err.remoteStatus, 400);
    assert.equal(err.remoteCode, 'bad_request');
    return true;
  });
  t.diagnostic(`7 GET /hello/ over an onion with keep-alive: ${Date.now() - started} ms`);
});

test('with a closed SOCKS port, peering requests fail and nothing reaches the peer', async () => {
  // Quiet the network first, so every request B sees from now on would have to be X's.
  for (const n of nodes) await n.peering?.stop();
  const requestsBefore = B.requests;
  const x = newIdentity();
  const filename = path.join(tempDir('p2pdb-peer-X-'), 'p2pdb.sqlite');
  const xPeers = await openPeerTable({ kind: 'sqlite', filename }, { self: x.address });
  const closed = await freePort();
  const agent = peerAgent(closed);
  const peering = await startPeering({
    identity: x,
    peerStore: xPeers,
    nodeInfo: info('*'),
    agent,
    bootstrapPeers: [B.identity.address],
    log,
    intervalMs: 50,
    schedule: { retryBaseMs: 100, maxBackoffMs: 200 },
    requestTimeoutMs: 10_000,
  });
  try {
    const failing = await waitFor(
      async () => {
        const p = await xPeers.get(B.identity.address);
        return p && p.failures >= 3 ? p : undefined;
      },
      { timeoutMs: 20_000, what: 'three failed hellos (retried after backoff)' },
    );
    assert.equal(failing.verified, false);
    await assert.rejects(peering.sayHelloNow(B.identity.address), (err: unknown) => {
      assert.ok(err instanceof P2pdbError && err.code === 'peer_unreachable', String(err));
      assert.match(err.message, new RegExp(`ECONNREFUSED 127\\.0\\.0\\.1:${closed}`));
      return true;
    });
    assert.equal(B.requests, requestsBefore, 'no request reached B');
    assert.equal(await B.peers.get(x.address), undefined, 'B never heard of X');
  } finally {
    await peering.stop();
    agent.destroy();
    await xPeers.close();
  }
});
