// The onion-service DoS defences (issue 12 item 1), shown from the network side on the private
// Tor network: what a client tor fetches from the HSDirs, and what a client's circuit suffers.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { resolveConfig, type ConfigInput } from '../src/config/config.js';
import { startNode, type RunningNode } from '../src/node/node.js';
import { describeDefences, parseTorVersion, versionAtLeast } from '../src/node/onion-service.js';
import { TorControl } from '../src/tor/control.js';
import { decodeDescriptor, type DecodedDescriptor } from '../src/tor/hs-descriptor.js';
import type { ClientTor } from '../src/tor/testnet.js';
import { waitFor } from '../src/tor/wait.js';
import { createLogger } from '../src/util/log.js';
import { useTestnet, withDeadline } from './helpers/testnet.js';
import { tempDir } from './helpers/tmp.js';

const testnet = useTestnet();

describe('tor version checks (pure)', () => {
  test('versions parse and compare', () => {
    assert.deepEqual(parseTorVersion('0.4.9.11 (git-abc)'), [0, 4, 9, 11]);
    assert.deepEqual(parseTorVersion('0.4.9.2-alpha'), [0, 4, 9, 2]);
    assert.equal(parseTorVersion('unknown'), undefined);
    assert.ok(versionAtLeast([0, 4, 9, 11], [0, 4, 9, 2]));
    assert.ok(versionAtLeast([0, 4, 9, 2], [0, 4, 9, 2]));
    assert.ok(!versionAtLeast([0, 4, 8, 16], [0, 4, 9, 2]));
    assert.ok(versionAtLeast([0, 5, 0, 0], [0, 4, 9, 2]));
  });
});

function capturingLogger() {
  const lines: string[] = [];
  return { lines, log: createLogger((l) => lines.push(l), 'debug') };
}

/**
 * HSFETCH through `client`'s control port and the descriptor it got from the HSDirs, decoded the
 * way any client decodes it (both layers opened with keys derived from the address; MACs
 * checked). Retried: right after publication the HSDirs may not all have it yet.
 */
async function fetchDescriptor(client: ClientTor, address: string): Promise<DecodedDescriptor> {
  const serviceId = address.replace(/\.onion$/, '');
  const control = await TorControl.connect({ port: client.controlPort });
  try {
    const outcomes: string[] = [];
    control.onEvent('HS_DESC', (ev) => {
      const [action, id] = ev.text.split(' ');
      if (id === serviceId && (action === 'RECEIVED' || action === 'FAILED')) outcomes.push(action);
    });
    await control.subscribe(['HS_DESC']);
    return await waitFor(
      async (note) => {
        outcomes.length = 0;
        await control.hsFetch(serviceId);
        await waitFor(() => outcomes.length > 0, { timeoutMs: 60_000, what: `an HS_DESC outcome for ${serviceId}` });
        if (!outcomes.includes('RECEIVED')) {
          note(`HSFETCH: ${outcomes.join(',')}`);
          return undefined;
        }
        return decodeDescriptor(await control.getInfo(`hs/client/desc/id/${serviceId}`), address);
      },
      { timeoutMs: 120_000, intervalMs: 1_000, what: `fetching the descriptor of ${address}` },
    );
  } finally {
    control.close();
  }
}

/** A raw SOCKS5 CONNECT to host:port through tor (name resolved by tor); resolves once tor says connected. */
function socksStream(socksPort: number, host: string, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socksPort, '127.0.0.1');
    let stage = 0;
    let buf = Buffer.alloc(0);
    const fail = (err: Error) => {
      socket.destroy();
      reject(err);
    };
    socket.once('error', fail);
    socket.once('connect', () => socket.write(Buffer.from([5, 1, 0])));
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (stage === 0 && buf.length >= 2) {
        if (buf[0] !== 5 || buf[1] !== 0) return fail(new Error('SOCKS: no acceptable auth method'));
        buf = buf.subarray(2);
        stage = 1;
        const name = Buffer.from(host);
        const req = Buffer.concat([Buffer.from([5, 1, 0, 3, name.length]), name, Buffer.from([port >> 8, port & 255])]);
        socket.write(req);
      }
      if (stage === 1 && buf.length >= 10) {
        if (buf[1] !== 0) return fail(new Error(`SOCKS connect refused (reply ${buf[1]})`));
        socket.off('data', onData);
        socket.off('error', fail);
        socket.on('error', () => {});
        resolve(socket);
      }
    };
    socket.on('data', onData);
  });
}

describe('onion-service DoS defences on the private network', () => {
  let prober: ClientTor;
  let lines: string[];
  const nodes: RunningNode[] = [];

  before(async () => {
    const network = await testnet;
    lines = network.networkTorrcLines();
    prober = await network.startClientTor('prober');
  });

  after(async () => {
    await Promise.all(nodes.map((n) => n.close()));
  });

  async function start(extra: ConfigInput) {
    const captured = capturingLogger();
    const node = await startNode(resolveConfig({ dataDir: tempDir('p2pdb-defences-'), port: 0, powBits: 12, tor: 'managed', torExtraLines: lines, ...extra }), { log: captured.log });
    nodes.push(node);
    return { node, lines: captured.lines };
  }

  test('by default the descriptor a client fetches from the HSDirs advertises pow-params', async () => {
    const { node, lines: log } = await start({});
    const onion = node.onion!;
    // The node's own read-back of its uploaded descriptor (GETINFO hs/service/desc/id).
    const report = await waitFor(() => onion.state().defences?.powInDescriptor !== undefined && onion.state().defences, { timeoutMs: 120_000, what: 'the node to read back its descriptor' });
    assert.equal(report.pow.state, 'on');
    assert.equal(report.powInDescriptor, true);
    assert.deepEqual(report.maxStreams, { state: 'on', limit: 64 });
    assert.equal(report.introDos.state, 'not settable');

    // The evidence that counts: the v3 descriptor's pow-params line lives in its encrypted inner
    // layer, so neither HS_DESC events nor `onions/current` show it. A second tor that has never
    // talked to the node fetches the descriptor from the network's HSDirs, and we open it with
    // the keys every client derives from the address. A client tor seeing this line solves the
    // Equi-X puzzle at the suggested effort before introducing itself, once the service raises
    // it under load (at rest the suggested effort is 0). The MaxStreams limit is not in the
    // descriptor (it is enforced by the service's tor on its circuits): see the next test.
    const fetched = await fetchDescriptor(prober, onion.address);
    assert.ok(fetched.pow, `no pow-params in the inner layer:\n${fetched.innerLines.filter((l) => !/^[A-Za-z0-9+/=]+$/.test(l)).join('\n')}`);
    assert.equal(fetched.pow.type, 'v1');
    assert.equal(Buffer.from(fetched.pow.seedBase64, 'base64').length, 32, 'a 32-byte seed');
    assert.equal(fetched.pow.suggestedEffort, 0, 'no load: no effort suggested yet');
    assert.ok(Date.parse(fetched.pow.expires + 'Z') > Date.now(), `the seed is not expired (${fetched.pow.expires})`);
    assert.ok(fetched.introductionPoints >= 1);

    // And the operator is told, in words, what is on and what is not.
    const said = log.map((l) => JSON.parse(l) as { msg: string; defences?: string[]; tor_version?: string }).find((l) => l.msg === 'onion service DoS defences');
    assert.ok(said, 'a log line lists the defences');
    assert.match(said.tor_version ?? '', /^0\.4\.\d+\.\d+/);
    const { powInDescriptor: _known, ...atPublish } = report; // logged at ADD_ONION, before the read-back
    assert.deepEqual(said.defences, describeDefences(atPublish));
    assert.match(said.defences![0]!, /^proof of work on \(queue 250\/s, burst 2500\)$/);
    assert.match(said.defences![2]!, /intro-point rate limit not set by p2pdb \(ADD_ONION has no keyword/);
    assert.ok(log.some((l) => /proof-of-work defence advertised in the published descriptor/.test(l)));
  });

  test('with onionPow off there is no pow-params line; MaxStreams closes a circuit that opens too many streams', async () => {
    const { node } = await start({ onionPow: 'off', onionMaxStreams: 2 });
    const onion = node.onion!;
    await waitFor(() => onion.state().published, { timeoutMs: 120_000, what: 'the second node to publish' });
    const report = onion.state().defences!;
    assert.equal(report.pow.state, 'off');
    assert.deepEqual(report.maxStreams, { state: 'on', limit: 2 });
    // The same fetch as above finds no pow-params: the check above is not vacuous.
    const fetched = await fetchDescriptor(prober, onion.address);
    assert.equal(fetched.pow, undefined);
    assert.ok(fetched.introductionPoints >= 1);

    // Streams to one onion from one SOCKS client share one rendezvous circuit. Two are allowed
    // (tor replied "connected", so the node's tor opened both to the HTTP port); the third makes
    // the node's tor close the circuit, which ends the first two as well. The node's HTTP server
    // would drop an idle connection only after its 20 s headersTimeout, so an end within 15 s of
    // the first stream opening is the circuit being closed.
    const first = await withDeadline(socksStream(prober.socksPort, onion.address, 80), 90_000, 'first stream');
    const opened = Date.now();
    const second = await withDeadline(socksStream(prober.socksPort, onion.address, 80), 30_000, 'second stream');
    const ended = [first, second].map((s) => new Promise<number>((resolve) => s.once('close', () => resolve(Date.now()))));
    assert.ok(!first.destroyed && !second.destroyed, 'two streams are within the limit');
    const third = socksStream(prober.socksPort, onion.address, 80).then(
      (s) => s.destroy(),
      () => undefined,
    );
    const endedAt = await withDeadline(Promise.all(ended), 15_000, 'the circuit to be closed after a third stream');
    await third;
    for (const t of endedAt) assert.ok(t - opened < 15_000, `a stream ended ${t - opened} ms after opening: that is the circuit, not the HTTP timeout`);
  });
});
