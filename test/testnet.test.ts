// The private Tor network (src/tor/testnet.ts) carries onion traffic between two client tors,
// peers are dialed only through SOCKS (src/tor/socks.ts), and torrcs stay on loopback (torrc.ts).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { P2pdbError } from '../src/errors.js';
import { TorControl } from '../src/tor/control.js';
import { freePort } from '../src/tor/ports.js';
import { assertOnionUrl, onionServiceId, peerAgent } from '../src/tor/socks.js';
import type { ClientTor } from '../src/tor/testnet.js';
import { assertLoopbackTorrc, renderTorrc } from '../src/tor/torrc.js';
import { httpGet, useTestnet, waitForOnionAnswer, withDeadline } from './helpers/testnet.js';

const testnet = useTestnet();
let a: ClientTor;
let b: ClientTor;
let controlA: TorControl;
let server: http.Server;
let hits = 0;

before(async () => {
  const net = await testnet;
  [a, b] = await Promise.all([net.startClientTor('nodeA'), net.startClientTor('nodeB')]);
  controlA = await TorControl.connect({ port: a.controlPort });
  server = http.createServer((req, res) => {
    hits++;
    res.setHeader('content-type', 'text/plain');
    res.end(`hello from A: ${req.method} ${req.url}`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
});

after(async () => {
  controlA?.close();
  await new Promise((resolve) => server?.close(resolve));
});

// A well-formed v3 name that no service uses (its key is 32 bytes of 0x42).
const UNUSED_ID = onionServiceId(Buffer.alloc(32, 0x42));

function isCode(code: string) {
  return (err: unknown) => err instanceof P2pdbError && err.code === code;
}

test('an onion published through A answers over SOCKS (socks5h) from B', async (t) => {
  const net = await testnet;
  const port = (server.address() as AddressInfo).port;
  // Dial only once A reports its descriptor on an HSDir: an earlier fetch would fail anyway.
  const uploadedIds = new Set<string>();
  let onUpload = () => {};
  const off = controlA.onEvent('HS_DESC', (ev) => {
    const [action, id] = ev.text.split(' ');
    if (action === 'UPLOADED' && id) uploadedIds.add(id);
    onUpload();
  });
  await controlA.subscribe(['HS_DESC']);
  const published = Date.now();
  const onion = await controlA.addOnion({ keyBlob: 'NEW', virtualPort: 80, target: `127.0.0.1:${port}` });
  const agent = peerAgent(b.socksPort);
  try {
    await withDeadline(
      new Promise<void>((resolve) => {
        onUpload = () => uploadedIds.has(onion.serviceId) && resolve();
        onUpload();
      }),
      60_000,
      'HS_DESC UPLOADED',
    );
    const uploaded = Date.now();
    const { url } = assertOnionUrl(`http://${onion.serviceId}.onion/ping`);
    const answer = await waitForOnionAnswer(url.href, agent, 120_000);
    const answered = Date.now();
    assert.equal(answer.status, 200);
    assert.equal(answer.body, 'hello from A: GET /ping');
    // Keep-alive: the second request rides the same connection.
    const second = await httpGet(`http://${onion.serviceId}.onion/again`, agent);
    assert.equal(second.body, 'hello from A: GET /again');
    assert.ok(hits >= 2);
    t.diagnostic(
      `ADD_ONION to descriptor uploaded: ${uploaded - published} ms, to first answer: ${answered - published} ms ` +
        `(${answer.attempts} attempt(s)); second request: ${Date.now() - answered} ms; ` +
        (net.attached
          ? 'network shared (P2PDB_TESTNET)'
          : `network start to usable: ${net.readyAt - net.startedAt} ms, network start to first onion answer: ${answered - net.startedAt} ms`),
    );
  } finally {
    off();
    agent.destroy();
    await controlA.unsubscribe(['HS_DESC']);
    await controlA.delOnion(onion.serviceId);
  }
});

test('with a closed SOCKS port a peer request fails and nothing is dialed directly', async () => {
  let direct = 0;
  const local = http.createServer((_req, res) => {
    direct++;
    res.end('reached directly');
  });
  local.on('connection', () => direct++);
  await new Promise<void>((resolve) => local.listen(0, '127.0.0.1', resolve));
  const closed = await freePort();
  const agent = peerAgent(closed);
  try {
    const port = (local.address() as AddressInfo).port;
    await assert.rejects(httpGet(`http://127.0.0.1:${port}/`, agent, 10_000), /ECONNREFUSED/);
    await assert.rejects(
      httpGet(`http://${UNUSED_ID}.onion/`, agent, 10_000),
      /ECONNREFUSED/,
    );
    assert.equal(direct, 0, 'the target was never contacted without the proxy');
  } finally {
    agent.destroy();
    await new Promise((resolve) => local.close(resolve));
  }
});

test('assertOnionUrl accepts only http(s) URLs of v3 onions', () => {
  for (const bad of [
    'http://127.0.0.1:80/',
    'http://example.com/',
    'http://localhost/',
    `ftp://${UNUSED_ID}.onion/`,
    `http://user:pw@${UNUSED_ID}.onion/`,
    `http://www.${UNUSED_ID}.onion/`,
    // right shape, wrong checksum
    `http://${UNUSED_ID.slice(0, 50)}${UNUSED_ID.slice(50).split('').reverse().join('')}.onion/`,
    // v2 shape (16 chars)
    'http://abcdefghijklmnop.onion/',
    'not a url',
  ]) {
    assert.throws(() => assertOnionUrl(bad), isCode('not_onion_url'), bad);
  }
  const ok = assertOnionUrl(`http://${UNUSED_ID.toUpperCase()}.onion/entries?x=1`);
  assert.equal(ok.serviceId, UNUSED_ID, 'URL parsing lower-cases the host');
  assert.equal(ok.url.pathname, '/entries');
});

test('torrcs render from templates and every listener stays on 127.0.0.1', async () => {
  const net = await testnet;
  const clientTorrc = await readFile(a.torrcPath, 'utf8');
  assert.doesNotThrow(() => assertLoopbackTorrc(clientTorrc));
  for (const line of net.describe().dirAuthorities) assert.ok(clientTorrc.includes(`DirAuthority ${line}\n`));

  const nodeTorrc = renderTorrc(await readFile(new URL('../../torrc.template', import.meta.url), 'utf8'), {
    DATA_DIR: '/var/lib/p2pdb',
    SOCKS_PORT: 9050,
    CONTROL_PORT: 9051,
  });
  assert.doesNotThrow(() => assertLoopbackTorrc(nodeTorrc));
  // ExtendedErrors: SOCKS replies say why an onion failed (the self-check logs it).
  assert.match(nodeTorrc, /^SocksPort 127\.0\.0\.1:9050 ExtendedErrors$/m);

  assert.throws(() => renderTorrc('SocksPort 127.0.0.1:{{PORT}}', {}), isCode('torrc_invalid'));
  assert.throws(() => renderTorrc('DataDirectory {{DIR}}', { DIR: '/x\nSocksPort 0.0.0.0:9050' }), isCode('torrc_invalid'));
  assert.equal(renderTorrc('DirAuthority {{A}}\nX 1', { A: ['a', 'b'] }), 'DirAuthority a\nDirAuthority b\nX 1');
  for (const bad of ['SocksPort 9050', 'ORPort 0.0.0.0:9001', 'ControlPort [::1]:9051', 'orport 10.0.0.1:1', 'Address 192.0.2.1', 'SocksListenAddress 0.0.0.0', 'HiddenServicePort 80 192.0.2.1:80', 'DirPort \\\n  0.0.0.0:80']) {
    assert.throws(() => assertLoopbackTorrc(`DataDirectory /x\n${bad}\n`), isCode('torrc_invalid'), bad);
  }
  assert.doesNotThrow(() => assertLoopbackTorrc('SocksPort 0\nControlPort unix:/run/x/control\n# ORPort 0.0.0.0:9001\nHiddenServicePort 80 127.0.0.1:8080'));
});
