// The node as a v3 onion service (src/node/onion-service.ts, tor-runtime.ts, identity-file.ts)
// with real tors on the private test network: a visitor tor dials the node's onion through SOCKS.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { resolveConfig, type ConfigInput } from '../src/config/config.js';
import { P2pdbError } from '../src/errors.js';
import { identityFile, loadOrCreateIdentity } from '../src/identity/identity-file.js';
import { identityFromSeed, torKeyBlob } from '../src/identity/onion-key.js';
import { startNode, type RunningNode } from '../src/node/node.js';
import { TorControl } from '../src/tor/control.js';
import { freePorts } from '../src/tor/ports.js';
import { spawnTor, type TorProcess } from '../src/tor/process.js';
import { peerAgent } from '../src/tor/socks.js';
import type { ClientTor } from '../src/tor/testnet.js';
import { waitFor } from '../src/tor/wait.js';
import { createLogger } from '../src/util/log.js';
import { spawnServe } from './helpers/cli.js';
import { useTestnet, waitForOnionAnswer } from './helpers/testnet.js';
import { tempDir } from './helpers/tmp.js';

const testnet = useTestnet();

function isCode(code: string) {
  return (err: unknown) => err instanceof P2pdbError && err.code === code;
}

const mode = (file: string) => statSync(file).mode & 0o777;

describe('identity file', () => {
  test('created once (dir 0700, file 0600, 32 bytes), then loaded with the same address', async () => {
    const dir = tempDir();
    const first = await loadOrCreateIdentity(dir);
    assert.equal(first.created, true);
    assert.equal(first.file, path.join(dir, 'identity', 'onion_ed25519_seed'));
    assert.equal(mode(first.file), 0o600);
    assert.equal(mode(path.dirname(first.file)), 0o700);
    assert.deepEqual(readFileSync(first.file), first.identity.seed);
    assert.match(first.identity.address, /^[a-z2-7]{56}\.onion$/);
    const again = await loadOrCreateIdentity(dir);
    assert.equal(again.created, false);
    assert.equal(again.identity.address, first.identity.address);
    assert.deepEqual(readdirSync(path.dirname(first.file)), ['onion_ed25519_seed'], 'no temp file left behind');
  });

  test('two starts at once end up with one identity', async () => {
    const dir = tempDir();
    const all = await Promise.all([1, 2, 3, 4].map(() => loadOrCreateIdentity(dir)));
    assert.equal(new Set(all.map((l) => l.identity.address)).size, 1);
    assert.equal(all.filter((l) => l.created).length, 1);
  });

  test('a file readable by others or of the wrong size is refused with a clear code', async () => {
    const dir = tempDir();
    const { file } = await loadOrCreateIdentity(dir);
    chmodSync(file, 0o640);
    await assert.rejects(loadOrCreateIdentity(dir), (e: unknown) => isCode('identity_permissions')(e) && /0600/.test((e as Error).message));
    chmodSync(file, 0o600);
    writeFileSync(file, Buffer.alloc(31));
    await assert.rejects(loadOrCreateIdentity(dir), isCode('identity_invalid'));
    writeFileSync(file, Buffer.alloc(33));
    await assert.rejects(loadOrCreateIdentity(dir), isCode('identity_invalid'));
  });
});

/** Every log line the node writes, debug included (it carries tor's own log lines too). */
function capturingLogger() {
  const lines: string[] = [];
  return { lines, log: createLogger((l) => lines.push(l), 'debug') };
}

function nodeConfig(dataDir: string, extra: ConfigInput = {}) {
  return resolveConfig({ dataDir, port: 0, powBits: 12, tor: 'managed', ...extra });
}

async function hello(address: string, agent: http.Agent): Promise<{ onion?: string; protocol: string; attempts: number; ms: number }> {
  const t0 = Date.now();
  const answer = await waitForOnionAnswer(`http://${address}/hello/`, agent, 90_000);
  assert.equal(answer.status, 200, answer.body);
  return { ...(JSON.parse(answer.body) as { onion?: string; protocol: string }), attempts: answer.attempts, ms: Date.now() - t0 };
}

describe('a node with Tor on, on the private network', () => {
  let visitor: ClientTor;
  /**
   * Client tors that first dial the node after its restart / after its tor was killed. A client
   * tor that had a rendezvous circuit to the previous tor instance keeps attaching new streams
   * to that dead circuit until SocksTimeout (2 min) or circuit expiry (measured: 90 s+); that is
   * the visitor's tor, not the node, so the node's reachability is shown with clients that
   * never talked to the old instance.
   */
  let afterRestart: ClientTor;
  let afterKill: ClientTor;
  let lines: string[];
  const timings: Record<string, number> = {};

  before(async () => {
    const net = await testnet;
    lines = net.networkTorrcLines();
    [visitor, afterRestart, afterKill] = (await Promise.all(['visitor', 'restart', 'kill'].map((n) => net.startClientTor(n)))) as [ClientTor, ClientTor, ClientTor];
  });

  after(() => {
    process.stderr.write(`onion-service timings (ms): ${JSON.stringify(timings)}\n`);
  });

  describe('managed tor', () => {
    const dataDir = tempDir('p2pdb-onion-node-');
    const captured = capturingLogger();
    let node: RunningNode | undefined;
    let address = '';

    after(async () => {
      await node?.close();
    });

    test('publishes its onion; a visitor reaches /hello/ through SOCKS and it names the same address', async () => {
      const t0 = Date.now();
      node = await startNode(nodeConfig(dataDir, { torExtraLines: lines }), { log: captured.log });
      timings.startNode = Date.now() - t0;
      const onion = node.onion!;
      assert.ok(onion, 'RunningNode.onion is set when Tor is on');
      address = onion.address;
      const seed = readFileSync(identityFile(dataDir));
      assert.equal(address, identityFromSeed(seed).address, 'the address is the identity file key');
      assert.ok(onion.socksPort > 0);
      assert.ok(onion.state().torPid! > 0);

      const agent = peerAgent(visitor.socksPort);
      try {
        const answer = await hello(address, agent);
        timings.startToReachable = Date.now() - t0;
        assert.equal(answer.protocol, 'p2pdb/1');
        assert.equal(answer.onion, address, '/hello/ names the onion it was reached through');
      } finally {
        agent.destroy();
      }
      await waitFor(() => onion.state().published, { timeoutMs: 30_000, what: 'published state' });
      assert.equal(onion.state().bootstrap.progress, 100);
      assert.equal(onion.state().lastError, undefined);
      // The node's own SOCKS port dials onions too (how it will reach peers).
      const own = peerAgent(onion.socksPort);
      try {
        assert.equal((await hello(address, own)).onion, address);
      } finally {
        own.destroy();
      }
      const local = (await (await fetch(`${node.url}/hello/`)).json()) as { onion?: string };
      assert.equal(local.onion, address);
    });

    test('restarted on the same data dir: the same address, reachable again', async () => {
      const oldPid = node!.onion!.state().torPid!;
      await node!.close();
      assert.throws(() => process.kill(oldPid, 0), 'the managed tor stops with the node');
      const t0 = Date.now();
      node = await startNode(nodeConfig(dataDir, { torExtraLines: lines }), { log: captured.log });
      assert.equal(node.onion!.address, address);
      await waitUntilPublished(node, oldPid);
      const agent = peerAgent(afterRestart.socksPort);
      try {
        assert.equal((await hello(address, agent)).onion, address);
        timings.nodeRestartToReachable = Date.now() - t0;
      } finally {
        agent.destroy();
      }
    });

    test('its tor killed with SIGKILL: restarted, and the same onion is reachable again', async () => {
      const onion = node!.onion!;
      const pid = onion.state().torPid!;
      const t0 = Date.now();
      process.kill(pid, 'SIGKILL');
      const newPid = await waitFor(
        () => {
          const p = onion.state().torPid;
          return p !== undefined && p !== pid ? p : undefined;
        },
        { timeoutMs: 30_000, what: 'a new tor process' },
      );
      assert.notEqual(newPid, pid);
      await waitUntilPublished(node!, pid);
      timings.torKillToPublished = Date.now() - t0;
      const agent = peerAgent(afterKill.socksPort);
      try {
        assert.equal((await hello(address, agent)).onion, address);
        timings.torKillToReachable = Date.now() - t0;
      } finally {
        agent.destroy();
      }
      assert.ok(captured.lines.some((l) => /tor control connection lost; reconnecting/.test(l)));
      assert.ok(captured.lines.some((l) => /onion added again/.test(l)));
      await waitFor(() => onion.state().published, { timeoutMs: 30_000, what: 'published state after restart' });
      assert.equal(onion.state().lastError?.code ?? 'none', 'none', 'published again clears the error');
    });

    test('the identity seed never appears in logs (node log and tor.log), and stays 0600', () => {
      const seed = readFileSync(identityFile(dataDir));
      const secrets = [seed.toString('hex'), seed.toString('base64').replace(/=+$/, ''), seed.toString('base64url'), torKeyBlob(seed).slice(0, 40)];
      const torLog = readFileSync(path.join(dataDir, 'tor', 'tor.log'), 'utf8');
      const nodeLog = captured.lines.join('\n');
      assert.ok(nodeLog.includes('tor bootstrap') && torLog.includes('Bootstrapped 100%'), 'the logs were captured');
      for (const s of secrets) {
        assert.ok(!nodeLog.toLowerCase().includes(s.toLowerCase()), 'node log holds key material');
        assert.ok(!torLog.includes(s), 'tor.log holds key material');
      }
      assert.equal(mode(identityFile(dataDir)), 0o600);
      assert.equal(mode(path.join(dataDir, 'tor')), 0o700);
      assert.equal(mode(path.join(dataDir, 'tor', 'torrc')), 0o600);
    });
  });

  test('attach mode: cookie or password auth, Detach, re-published after that tor restarts, removed on stop', async () => {
    const net = await testnet;
    const password = 'attach-test-password';
    const hashed = execFileSync('tor', ['--quiet', '--hash-password', password]).toString().trim();
    const host = await net.startClientTor('host', { extraLines: [`HashedControlPassword ${hashed}`] });
    const torControl = `127.0.0.1:${host.controlPort}`;
    const captured = capturingLogger();
    const nodes: RunningNode[] = [];
    let control: TorControl | undefined;
    let hostAgain: TorProcess | undefined;
    const detached = async () => (await control!.getInfo('onions/detached')).split('\n');
    try {
      // Cookie auth (no password given): the cookie file is the one tor names in PROTOCOLINFO.
      const node = await startNode(nodeConfig(tempDir('p2pdb-onion-attach-'), { tor: 'attach', torControl }), { log: captured.log, onion: { retryMinMs: 200 } });
      nodes.push(node);
      const onion = node.onion!;
      const serviceId = onion.address.replace(/\.onion$/, '');
      assert.equal(onion.socksPort, host.socksPort, 'the SOCKS port is asked from tor');
      assert.equal(onion.state().torPid, undefined, 'no tor of our own');
      control = await TorControl.connect({ port: host.controlPort });
      assert.ok((await detached()).includes(serviceId), 'added with Detach');
      const t0 = Date.now();
      const agent = peerAgent(visitor.socksPort);
      try {
        assert.equal((await hello(onion.address, agent)).onion, onion.address);
        timings.attachToReachable = Date.now() - t0;
      } finally {
        agent.destroy();
      }

      // Password auth, and a given SOCKS port instead of the discovered one.
      const withPassword = await startNode(
        nodeConfig(tempDir('p2pdb-onion-attach-pw-'), { tor: 'attach', torControl, torControlPassword: password, torSocks: `127.0.0.1:${host.socksPort}` }),
        { log: createLogger(() => {}) },
      );
      nodes.push(withPassword);
      assert.ok((await detached()).includes(withPassword.onion!.address.replace(/\.onion$/, '')));
      await withPassword.close();
      assert.ok(!(await detached()).includes(withPassword.onion!.address.replace(/\.onion$/, '')), 'DEL_ONION on stop');
      await assert.rejects(
        startNode(nodeConfig(tempDir('p2pdb-onion-attach-bad-'), { tor: 'attach', torControl, torControlPassword: 'wrong' }), { log: createLogger(() => {}) }),
        isCode('tor_control'),
        'a wrong password fails the start loudly',
      );

      // That tor dies and comes back on the same ports: the node reconnects and adds the onion again.
      control.close();
      process.kill(host.pid, 'SIGKILL');
      await waitFor(() => !isAlive(host.pid), { timeoutMs: 10_000, what: 'the attached tor to die' });
      await waitFor(() => onion.state().lastError?.code === 'tor_control', { timeoutMs: 10_000, what: 'the lost connection to be noticed' });
      const t1 = Date.now();
      hostAgain = spawnTor({ name: 'host-again', torrcPath: host.torrcPath, dir: host.dataDir });
      await waitFor(() => onion.state().published, { timeoutMs: 60_000, what: 'the onion published again through the restarted tor' });
      timings.attachedTorRestartToPublished = Date.now() - t1;
      assert.ok(captured.lines.some((l) => /onion added again/.test(l)));
      control = await TorControl.connect({ port: host.controlPort });
      assert.ok((await detached()).includes(serviceId));
      // A client tor that never dialed this onion (see afterKill): no stale rendezvous circuit.
      const again = peerAgent(afterKill.socksPort);
      try {
        assert.equal((await hello(onion.address, again)).onion, onion.address);
        timings.attachedTorRestartToReachable = Date.now() - t1;
      } finally {
        again.destroy();
      }
      await node.close();
      assert.ok(!(await detached()).includes(serviceId), 'DEL_ONION on stop');
    } finally {
      control?.close();
      await Promise.all(nodes.map((n) => n.close()));
      await hostAgain?.stop();
      await host.stop();
    }
  });

  test('tor without a network: the node keeps serving on loopback and says tor cannot reach the network', async () => {
    const net = await testnet;
    // The network's own lines, with the authority moved to ports where nothing listens.
    const [orPort, dirPort] = (await freePorts(2)) as [number, number];
    const deadLines = net
      .networkTorrcLines()
      .map((l) => (l.startsWith('DirAuthority ') ? l.replace(/orport=\d+/, `orport=${orPort}`).replace(/127\.0\.0\.1:\d+/, `127.0.0.1:${dirPort}`) : l));
    const captured = capturingLogger();
    const node = await startNode(nodeConfig(tempDir('p2pdb-onion-offline-'), { torExtraLines: deadLines }), {
      log: captured.log,
      onion: { bootstrapDeadlineMs: 3_000 },
    });
    try {
      const lastError = await waitFor(() => node.onion!.state().lastError, { timeoutMs: 30_000, what: 'a reported tor problem' });
      assert.equal(lastError.code, 'tor_no_network');
      assert.ok(captured.lines.some((l) => /tor cannot reach the Tor network/.test(l)));
      assert.equal(node.onion!.state().published, false);
      assert.ok(node.onion!.state().bootstrap.progress < 100);
      const res = await fetch(`${node.url}/hello/`);
      assert.equal(res.status, 200, 'the HTTP node still answers locally');
      assert.equal(((await res.json()) as { onion?: string }).onion, node.onion!.address);
    } finally {
      await node.close();
    }
  });

  test('p2pdb serve --tor managed: prints the onion, listens on loopback only (node and its tor), stops cleanly', async () => {
    const dataDir = tempDir('p2pdb-onion-serve-');
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    // torExtraLines has no flag or environment variable: it comes from the config file.
    await writeFile(path.join(dataDir, 'config.json'), JSON.stringify({ torExtraLines: lines }));
    const serve = await spawnServe(['--data', dataDir, '--port', '0', '--pow-bits', '12', '--tor', 'managed']);
    let stopped = false;
    try {
      const m = /onion address ([a-z2-7]{56}\.onion) \(Tor managed, SOCKS 127\.0\.0\.1:(\d+)\)/.exec(serve.stdout());
      assert.ok(m, serve.stdout());
      const address = m[1]!;
      assert.doesNotMatch(serve.stdout(), /Tor is off/);
      assert.equal(address, identityFromSeed(readFileSync(identityFile(dataDir))).address);
      const agent = peerAgent(visitor.socksPort);
      try {
        assert.equal((await hello(address, agent)).onion, address);
      } finally {
        agent.destroy();
      }

      const pid = serve.child.pid!;
      const torPid = childrenOf(pid).find((p) => commOf(p) === 'tor');
      assert.ok(torPid, 'serve runs its own tor as a child');
      const sockets = socketsOf([pid, torPid]);
      const listening = sockets.filter((s) => s.listening);
      const httpPort = Number(/127\.0\.0\.1:(\d+)/.exec(serve.url)![1]);
      assert.ok(listening.some((s) => s.pid === pid && s.port === httpPort), 'the HTTP listener was found');
      assert.ok(listening.some((s) => s.pid === torPid && s.port === Number(m[2])), "tor's SOCKS listener was found");
      const outside = sockets.filter((s) => !s.loopback);
      assert.deepEqual(outside, [], 'no socket of the node or its tor is bound beyond loopback');

      assert.equal(await serve.stop(), 0);
      stopped = true;
      assert.match(serve.stdout(), /SIGTERM: stopping \(.*\)\nstopped in \d+\.\d s\n/);
      await waitFor(() => !isAlive(torPid), { timeoutMs: 15_000, what: 'tor to exit with serve' });
    } finally {
      if (!stopped) await serve.stop();
    }
  });
});

/**
 * Until the new tor has uploaded its descriptor, HSDirs still hand out the old one, and a client
 * that is introduced through a dying tor's intro circuit in that instant waits for a rendezvous
 * that never comes (until SocksTimeout, 2 min; measured). So dial once the node says so.
 */
async function waitUntilPublished(node: RunningNode, oldTorPid: number): Promise<void> {
  await waitFor(
    () => {
      const s = node.onion!.state();
      return s.published && s.torPid !== undefined && s.torPid !== oldTorPid;
    },
    { timeoutMs: 60_000, what: 'the onion published by the new tor' },
  );
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function childrenOf(pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`).flatMap((tid) =>
    readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8')
      .split(/\s+/)
      .filter((s) => s !== '')
      .map(Number),
  );
}

function commOf(pid: number): string {
  return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
}

interface SocketInfo {
  pid: number;
  proto: string;
  local: string;
  port: number;
  listening: boolean;
  loopback: boolean;
}

/** TCP and UDP sockets (v4 and v6) held by these processes, from /proc/net/* and /proc/PID/fd. */
function socketsOf(pids: number[]): SocketInfo[] {
  const owner = new Map<string, number>();
  for (const pid of pids) {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue; // closed meanwhile
      }
      const m = /^socket:\[(\d+)\]$/.exec(target);
      if (m) owner.set(m[1]!, pid);
    }
  }
  const out: SocketInfo[] = [];
  for (const proto of ['tcp', 'tcp6', 'udp', 'udp6']) {
    for (const row of readFileSync(`/proc/net/${proto}`, 'utf8').split('\n').slice(1)) {
      const cols = row.trim().split(/\s+/);
      if (cols.length < 10) continue;
      const pid = owner.get(cols[9]!);
      if (pid === undefined) continue;
      const [hexAddr, hexPort] = cols[1]!.split(':') as [string, string];
      const local = decodeAddress(hexAddr);
      out.push({ pid, proto, local, port: parseInt(hexPort, 16), listening: proto.startsWith('tcp') && cols[3] === '0A', loopback: isLoopbackAddress(local) });
    }
  }
  return out;
}

/** /proc/net addresses are 32-bit words in host (little-endian) byte order. */
function decodeAddress(hex: string): string {
  const words = hex.match(/.{8}/g)!.map((w) => Buffer.from(w, 'hex').reverse());
  const bytes = Buffer.concat(words);
  if (bytes.length === 4) return [...bytes].join('.');
  return (bytes.toString('hex').match(/.{4}/g) ?? []).join(':');
}

function isLoopbackAddress(addr: string): boolean {
  if (/^127\./.test(addr)) return true;
  const v6 = addr.split(':').map((g) => parseInt(g, 16));
  if (v6.length !== 8) return false;
  if (v6.slice(0, 7).every((g) => g === 0) && v6[7] === 1) return true; // ::1
  // ::ffff:127.x.y.z (a v4-mapped loopback address)
  return v6.slice(0, 5).every((g) => g === 0) && v6[5] === 0xffff && v6[6]! >> 8 === 127;
}
