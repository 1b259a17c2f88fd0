/**
 * The client library through the private Tor network: a user's own tor (SOCKS, socks5h) to a
 * node's onion address, subscribing and receiving a live entry, and writing through the onion;
 * the CLI the same way, with --socks.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, test } from 'node:test';
import { P2pdbClient, generateKeys, socksAgent, type VerifiedEntry } from '../src/client/index.js';
import { resolveConfig } from '../src/config/config.js';
import { startNode, type RunningNode } from '../src/node/node.js';
import type { ClientTor } from '../src/tor/testnet.js';
import { waitFor } from '../src/tor/wait.js';
import { silentLogger } from '../src/util/log.js';
import { CLI_MAIN, cleanEnv, runCli } from './helpers/cli.js';
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

test('the CLI reaches an onion node only through --socks: refused before any lookup without it; put, get and get --follow over the onion with it', async () => {
  const onionUrl = `http://${node.onion!.address}`;
  const home = tempDir('p2pdb-ctor-home-');
  const env = { P2PDB_HOME: home, P2PDB_PASSPHRASE: 'cli over tor', HOME: home };
  for (const name of ['board', 'alice']) {
    const r = await runCli(['keys', 'new', name], { env });
    assert.equal(r.code, 0, r.stderr);
  }
  const overTor = ['--node', onionUrl, '--socks', String(user.socksPort)];

  const refused = await runCli(['get', '--node', onionUrl, '--recipient', 'alice'], { env });
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /error \[config_invalid\].*onion address: give --socks/);
  const refusedFollow = await runCli(['get', '--follow', '--node', onionUrl, '--recipient', 'alice'], { env });
  assert.match(refusedFollow.stderr, /error \[config_invalid\]/);

  await waitForOnionAnswer(`${onionUrl}/hello/`, socksAgent(user.socksPort), 120_000);
  const put = await runCli(['put', ...overTor, '--table', 'board', '--to', 'alice', 'cli over tor'], { env, timeoutMs: 180_000 });
  assert.equal(put.code, 0, put.stderr);
  const got = await runCli(['get', '--node', onionUrl, '--recipient', 'alice'], { env: { ...env, P2PDB_SOCKS: `127.0.0.1:${user.socksPort}` }, timeoutMs: 180_000 });
  assert.equal(got.code, 0, got.stderr);
  assert.match(got.stdout, /board -> alice: cli over tor/);

  const follower = spawn(process.execPath, [CLI_MAIN, 'get', '--follow', ...overTor, '--recipient', 'alice'], { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  follower.stdout.on('data', (c: Buffer) => (out += c.toString()));
  follower.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number | null>((resolve) => follower.once('exit', resolve));
  const seen = (what: string, check: () => boolean) =>
    waitFor(() => check() || (follower.exitCode !== null ? Promise.reject(new Error(`follow exited: ${err}`)) : false), { timeoutMs: 120_000, intervalMs: 20, what: `${what}\nstdout: ${out}\nstderr: ${err}` });
  try {
    await seen('the stored entry and the stream open', () => out.includes('cli over tor') && err.includes('following'));
    // Written on loopback, followed over the onion.
    const local = await runCli(['put', '--node', node.url, '--table', 'board', '--to', 'alice', 'live over tor'], { env });
    assert.equal(local.code, 0, local.stderr);
    await seen('the live entry over the onion', () => out.includes('board -> alice: live over tor'));
  } finally {
    follower.kill('SIGINT');
    await exited;
  }
});
