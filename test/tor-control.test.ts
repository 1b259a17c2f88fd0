// TorControl (src/tor/control.ts) against a real client tor of the private test network.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { P2pdbError } from '../src/errors.js';
import { addOnionCommand, TorControl, type BootstrapPhase, type TorEvent } from '../src/tor/control.js';
import { ReplyFramer } from '../src/tor/framing.js';
import { freePort } from '../src/tor/ports.js';
import { isV3ServiceId } from '../src/tor/socks.js';
import type { ClientTor } from '../src/tor/testnet.js';
import { useTestnet, withDeadline } from './helpers/testnet.js';

const testnet = useTestnet();
let tor: ClientTor;
let control: TorControl;

before(async () => {
  const net = await testnet;
  // Not waiting for bootstrap here: the first test follows it through the control port.
  tor = await net.startClientTor('ctl', { bootstrap: false });
  control = await TorControl.connect({ port: tor.controlPort });
});

after(() => control?.close());

function isCode(code: string) {
  return (err: unknown) => err instanceof P2pdbError && err.code === code;
}

test('bootstrap progress is followed to 100', async () => {
  const seen: BootstrapPhase[] = [];
  const done = await control.waitForBootstrap((p) => seen.push(p), 120_000);
  assert.equal(done.progress, 100);
  assert.equal(done.tag, 'done');
  assert.ok(seen.length >= 1);
  assert.equal(seen.at(-1)?.progress, 100);
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i]!.progress >= seen[i - 1]!.progress, 'progress never goes back');
  assert.deepEqual(await control.getBootstrapPhase(), { progress: 100, tag: 'done', summary: 'Done' });
});

test('a value containing "=" comes back whole', async () => {
  assert.equal(await control.getInfo('status/bootstrap-phase'), 'NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY="Done"');
  const net = await testnet;
  assert.deepEqual(await control.getConf('DirAuthority'), net.describe().dirAuthorities);
  assert.deepEqual(await control.getConf('SocksPort'), [`127.0.0.1:${tor.socksPort} ExtendedErrors`]);
  assert.deepEqual(await control.getConf('HiddenServiceDir'), [], 'an unset option has no values');
});

test('multi-line values come back whole and every pipelined command gets its own reply', async () => {
  // Sent back to back without waiting, so replies share socket chunks and a long data block
  // (config/names is several KiB) spans several: framing and reply matching both have to hold.
  const [configText, version, names, socks, phase] = await Promise.all([
    control.getInfo('config-text'),
    control.getInfo('version'),
    control.getInfo('config/names'),
    control.getConf('SocksPort'),
    control.getInfo('status/bootstrap-phase'),
  ]);
  const lines = configText.split('\n');
  assert.ok(lines.includes(`SocksPort 127.0.0.1:${tor.socksPort} ExtendedErrors`), configText);
  assert.ok(lines.includes(`ControlPort 127.0.0.1:${tor.controlPort}`), configText);
  assert.ok(lines.includes(`DataDirectory ${tor.dataDir}`), configText);
  assert.ok(lines.includes('TestingTorNetwork 1'), configText);
  assert.ok(lines.some((l) => l.startsWith('DirAuthority auth0 orport=')), configText);
  assert.match(version, /^0\.4\.\d+\.\d+/);
  const nameLines = names.split('\n');
  assert.ok(nameLines.length > 100, `config/names has ${nameLines.length} lines`);
  assert.ok(nameLines.some((l) => l.startsWith('SocksPort ')));
  assert.ok(nameLines.some((l) => l.startsWith('__OwningControllerProcess ')));
  assert.deepEqual(socks, [`127.0.0.1:${tor.socksPort} ExtendedErrors`]);
  assert.equal(phase, 'NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY="Done"');
  // And a single-line command right after a multi-line reply.
  await control.getInfo('config-text');
  assert.equal(await control.getInfo('version'), version);
});

test('a refused command is a typed error and the next command still gets its own reply', async () => {
  await assert.rejects(control.getInfo('no/such/key'), (err: unknown) => isCode('tor_command_failed')(err) && /552/.test((err as Error).message));
  assert.match(await control.getInfo('version'), /^0\.4\./);
  await assert.rejects(control.getInfo('two words'), isCode('tor_control'), 'input that would split the command is refused');
});

test('ADD_ONION with a NEW key, then again with the saved key, gives the same service id', async () => {
  const first = await control.addOnion({ keyType: 'ED25519-V3', keyBlob: 'NEW', virtualPort: 80, target: '127.0.0.1:9' });
  assert.ok(isV3ServiceId(first.serviceId), first.serviceId);
  assert.match(first.privateKey, /^[A-Za-z0-9+/]{86}==$/, 'base64 padding intact');
  assert.equal(Buffer.from(first.privateKey, 'base64').length, 64);
  assert.ok((await control.getInfo('onions/current')).split('\n').includes(first.serviceId));

  await control.delOnion(first.serviceId);
  assert.ok(!(await control.getInfo('onions/current')).split('\n').includes(first.serviceId));

  const again = await control.addOnion({ keyType: 'ED25519-V3', keyBlob: first.privateKey, virtualPort: 80, target: '127.0.0.1:9' });
  assert.equal(again.serviceId, first.serviceId);
  assert.equal(again.privateKey, first.privateKey);
  await control.delOnion(again.serviceId);
  await assert.rejects(control.delOnion(again.serviceId), isCode('tor_command_failed'), 'deleting twice is refused by tor');
});

test('ADD_ONION carries the DoS keywords; tor takes them, refuses bad values and unknown keywords before anything else is sent', async () => {
  const opts = { keyBlob: 'NEW' as const, virtualPort: 80, target: '127.0.0.1:9', detach: false };
  assert.equal(
    addOnionCommand({ ...opts, maxStreams: 8, maxStreamsCloseCircuit: true, pow: { queueRate: 5, queueBurst: 50 } }),
    'ADD_ONION NEW:ED25519-V3 Flags=MaxStreamsCloseCircuit MaxStreams=8 PoWDefensesEnabled=1 PoWQueueRate=5 PoWQueueBurst=50 Port=80,127.0.0.1:9',
  );
  const added = await control.addOnion({ ...opts, maxStreams: 8, maxStreamsCloseCircuit: true, pow: { queueRate: 5, queueBurst: 50 } });
  assert.ok(isV3ServiceId(added.serviceId));
  await control.delOnion(added.serviceId);
  // A value we refuse never reaches tor, and the connection stays usable.
  await assert.rejects(control.addOnion({ ...opts, maxStreams: 70_000 }), isCode('tor_control'));
  assert.match(await control.getInfo('version'), /^0\.4\./);
  // Nor can words be smuggled in through the target (say, the intro-point DoS option, which
  // tor 0.4.9.11 would refuse anyway: "512 Bad arguments to ADD_ONION: Unrecognized keyword argument").
  await assert.rejects(
    control.addOnion({ ...opts, keyBlob: 'NEW', target: '127.0.0.1:9 HiddenServiceEnableIntroDoSDefense=1' }),
    isCode('tor_control'),
    'our target check refuses smuggled words',
  );
});

test('a detached onion outlives its control connection; events report its descriptor upload', async () => {
  const other = await TorControl.connect({ port: tor.controlPort });
  let onion: { serviceId: string } | undefined;
  try {
    const uploaded = new Promise<TorEvent>((resolve) => {
      control.onEvent('HS_DESC', (ev) => {
        if (onion && ev.text.startsWith(`UPLOADED ${onion.serviceId} `)) resolve(ev);
      });
    });
    await control.subscribe(['HS_DESC']);
    onion = await other.addOnion({ keyBlob: 'NEW', virtualPort: 80, target: '127.0.0.1:9', detach: true });
    other.close();
    await other.closed;
    assert.ok((await control.getInfo('onions/detached')).split('\n').includes(onion.serviceId));
    const ev = await withDeadline(uploaded, 60_000, 'HS_DESC UPLOADED');
    assert.equal(ev.type, 'HS_DESC');
    await control.unsubscribe(['HS_DESC']);
  } finally {
    if (onion) await control.delOnion(onion.serviceId);
  }
  assert.ok(!(await control.getInfo('onions/detached')).split('\n').includes(onion.serviceId));
});

test('a wrong cookie is refused before anything is sent with it', async () => {
  const fake = path.join(tor.dataDir, 'wrong_cookie');
  await writeFile(fake, Buffer.alloc(32, 7));
  await assert.rejects(TorControl.connect({ port: tor.controlPort, cookiePath: fake }), (err: unknown) =>
    isCode('tor_control')(err) && /did not prove/.test((err as Error).message),
  );
  assert.match(await control.getInfo('version'), /^0\.4\./, 'the good connection is unaffected');
});

test('framing holds however tor\'s bytes are chunked', async () => {
  // Real reply bytes from this tor, read on a plain socket, then framed whole and byte by byte.
  const cookie = await readFile(tor.cookiePath);
  const raw = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    const sock = net.connect(tor.controlPort, '127.0.0.1', () => {
      sock.write(`AUTHENTICATE ${cookie.toString('hex')}\r\nGETINFO config-text version config/names\r\nGETINFO no/such/key\r\nQUIT\r\n`);
    });
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', reject);
    sock.on('close', () => resolve(Buffer.concat(chunks)));
  });
  const whole = new ReplyFramer().push(raw);
  const framer = new ReplyFramer();
  const bytewise = [...raw].flatMap((byte) => framer.push(Buffer.from([byte])));
  assert.deepEqual(bytewise, whole);
  assert.deepEqual(whole.map((r) => r.code), [250, 250, 552, 250]);
  const info = whole[1]!;
  assert.equal(info.lines.find((l) => l.text === 'config-text=')?.data, await control.getInfo('config-text'));
  assert.equal(info.lines.find((l) => l.text === 'config/names=')?.data, await control.getInfo('config/names'));
  assert.equal(info.lines.find((l) => l.text.startsWith('version='))?.text, `version=${await control.getInfo('version')}`);
});

test('password auth, over a unix-socket control port', async () => {
  const hash = execFileSync('tor', ['--quiet', '--hash-password', 'correct horse'], { encoding: 'utf8' }).trim().split('\n').at(-1)!;
  const net = await testnet;
  const pw = await net.startClientTor('pw', {
    bootstrap: false,
    extraLines: [`HashedControlPassword ${hash}`, 'ControlPort unix:{{DATA_DIR}}/control.sock'],
  });
  const socketPath = path.join(pw.dataDir, 'control.sock');
  const viaUnix = await TorControl.connect({ socketPath, password: 'correct horse' });
  try {
    assert.match(await viaUnix.getInfo('version'), /^0\.4\./);
    assert.deepEqual(await viaUnix.getConf('SocksPort'), [`127.0.0.1:${pw.socksPort} ExtendedErrors`]);
  } finally {
    viaUnix.close();
  }
  await assert.rejects(TorControl.connect({ socketPath, password: 'wrong' }), (err: unknown) =>
    isCode('tor_control')(err) && /authentication refused: 515/.test((err as Error).message),
  );
  await pw.stop();
});

test('a control port nobody listens on is a typed connect error', async () => {
  const closed = await freePort(); // bound and released: nothing listens there now
  await assert.rejects(TorControl.connect({ port: closed, timeoutMs: 5_000 }), isCode('tor_control'));
});
