// Self-healing reachability (issue 12 item 3) on the private Tor network: the node dials its own
// onion through its own tor; when the service is removed behind its back (DEL_ONION from another
// control connection) it notices and re-publishes, and a visitor reaches it again.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { resolveConfig } from '../src/config/config.js';
import { addClient } from '../src/identity/client-auth.js';
import { startNode, type RunningNode } from '../src/node/node.js';
import { readNodeStatus } from '../src/node/status-file.js';
import { TorControl } from '../src/tor/control.js';
import { peerAgent } from '../src/tor/socks.js';
import type { ClientTor } from '../src/tor/testnet.js';
import { waitFor } from '../src/tor/wait.js';
import { createLogger } from '../src/util/log.js';
import { runCli } from './helpers/cli.js';
import { useTestnet, waitForOnionAnswer } from './helpers/testnet.js';
import { tempDir } from './helpers/tmp.js';

const testnet = useTestnet();
/** Fast enough for a test; the defaults are 60 s / 30 s / 3. */
const SELF_CHECK = { intervalMs: 1_000, timeoutMs: 10_000, republishAfter: 2, restartTorAfter: 1_000 };

describe('self-healing reachability on the private network', () => {
  let host: ClientTor;
  let visitor: ClientTor;
  const nodes: RunningNode[] = [];
  const lines: string[] = [];
  const log = createLogger((l) => lines.push(l), 'debug');
  const timings: Record<string, number> = {};

  before(async () => {
    const net = await testnet;
    [host, visitor] = await Promise.all([net.startClientTor('healhost'), net.startClientTor('healvisitor')]);
  });

  after(async () => {
    for (const n of nodes) await n.close();
    process.stderr.write(`self-heal timings (ms): ${JSON.stringify(timings)}\n`);
    if (process.env.P2PDB_SELF_HEAL_LOG) for (const l of lines) if (/self-check|re-publish|onion service published|rendezvous|connections of clients/.test(l)) process.stderr.write(l + '\n');
  });

  const start = async (dataDir: string) => {
    const node = await startNode(resolveConfig({ dataDir, port: 0, powBits: 12, tor: 'attach', torControl: `127.0.0.1:${host.controlPort}` }), {
      log,
      onion: { retryMinMs: 200, selfCheck: SELF_CHECK },
    });
    nodes.push(node);
    return node;
  };

  test('the service removed behind the node\'s back (DEL_ONION): re-published by itself and reachable again', async () => {
    const dataDir = tempDir('p2pdb-self-heal-');
    const t0 = Date.now();
    const node = await start(dataDir);
    const onion = node.onion!;
    const serviceId = onion.address.replace(/\.onion$/, '');
    const firstOk = await waitFor(() => onion.state().selfCheck.lastOkAt, { timeoutMs: 120_000, what: 'a first successful self-check' });
    timings.startToFirstSelfCheckOk = firstOk - t0;

    const other = await TorControl.connect({ port: host.controlPort });
    let removedAt: number;
    try {
      await other.delOnion(serviceId);
      removedAt = Date.now();
      assert.ok(!(await other.getInfo('onions/detached')).split('\n').includes(serviceId), 'the service is gone from tor');
      // The node re-publishes after SELF_CHECK.republishAfter failures, and its next check succeeds.
      const healedAt = await waitFor(
        () => {
          const s = onion.state().selfCheck;
          return s.republishes >= 1 && s.lastOkAt !== undefined && s.lastOkAt > removedAt && s.consecutiveFailures === 0 ? s.lastOkAt : undefined;
        },
        { timeoutMs: 120_000, what: 'the node to re-publish and reach itself again' },
      );
      timings.removedToSelfCheckOk = healedAt - removedAt;
      assert.ok((await other.getInfo('onions/detached')).split('\n').includes(serviceId), 'added again (Detach), same address');
    } finally {
      other.close();
    }
    assert.ok(lines.some((l) => /self-check: our onion did not answer/.test(l)));
    assert.ok(lines.some((l) => /re-publishing the onion service/.test(l) && /self-check failed 2 times/.test(l)));

    // A visitor that never talked to the removed instance reaches it.
    const agent = peerAgent(visitor.socksPort);
    try {
      const answer = await waitForOnionAnswer(`http://${onion.address}/hello/`, agent, 120_000);
      assert.equal(answer.status, 200);
      timings.removedToVisitorReached = Date.now() - removedAt;
    } finally {
      agent.destroy();
    }

    // status.json and `p2pdb status` show the last successful self-check.
    const status = await waitFor(() => {
      const s = readNodeStatus(dataDir);
      return s?.tor.selfCheck?.lastOkAt !== undefined && s.tor.selfCheck.lastOkAt > removedAt ? s : undefined;
    }, { timeoutMs: 10_000, what: 'status.json with the new self-check' });
    assert.ok(status.tor.selfCheck!.republishes >= 1);
    timings.republishes = status.tor.selfCheck!.republishes;
    const home = tempDir('p2pdb-self-heal-home-');
    const shown = await runCli(['status', '--data', dataDir, '--node', node.url], { env: { P2PDB_HOME: home, HOME: home } });
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /self-check\s+reached itself \d+ s ago; healed by \d+ re-publish/);
  });

  test('a private node reaches itself too (an in-memory key of its own), so it does not re-publish for nothing', async () => {
    const dataDir = tempDir('p2pdb-self-heal-private-');
    await addClient(dataDir, 'someone');
    const node = await start(dataDir);
    const onion = node.onion!;
    assert.equal(onion.state().clientAuth.clients, 1);
    const t0 = Date.now();
    await waitFor(() => onion.state().selfCheck.lastOkAt, { timeoutMs: 120_000, what: 'a private node\'s first successful self-check' });
    timings.privateStartToSelfCheckOk = Date.now() - t0;
    assert.equal(onion.state().selfCheck.republishes, 0);
  });
});
