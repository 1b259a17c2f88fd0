/** spawnTor and waitForControl failure paths with real spawns: a missing binary, ports taken under tor. */
import assert from 'node:assert/strict';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { test } from 'node:test';
import { readFileSync } from 'node:fs';
import { chmod, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { P2pdbError, isP2pdbError } from '../src/errors.js';
import { freePort, freePorts, isPortClash, portPool, retryOnPortClash } from '../src/tor/ports.js';
import { spawnTor, waitForControl } from '../src/tor/process.js';
import { tempDir } from './helpers/tmp.js';

test('a missing tor binary is a typed error, and the spawn error that follows does not crash the process', async () => {
  const dir = tempDir('p2pdb-tor-process-');
  assert.throws(
    () => spawnTor({ name: 'missing', torrcPath: `${dir}/torrc`, dir, torBinary: `${dir}/no-such-tor` }),
    (e: unknown) => isP2pdbError(e) && e.code === 'tor_process',
  );
  // The child's 'error' event arrives after the throw; an unhandled one would end this process.
  let uncaught: unknown;
  const onUncaught = (err: unknown) => (uncaught = err);
  process.on('uncaughtException', onUncaught);
  try {
    for (let i = 0; i < 5; i++) await nextTurn();
  } finally {
    process.off('uncaughtException', onUncaught);
  }
  assert.equal(uncaught, undefined);
});

/** A tor that needs no network: only a control port (no auth) and its data dir. */
async function quietTor(name: string, controlPort: number) {
  const dir = tempDir(`p2pdb-tor-${name}-`);
  await chmod(dir, 0o700);
  const torrcPath = path.join(dir, 'torrc');
  await writeFile(torrcPath, [`DataDirectory ${dir}`, `ControlPort 127.0.0.1:${controlPort}`, 'SocksPort 0', 'DisableNetwork 1', 'Log notice stdout', ''].join('\n'));
  return spawnTor({ name, torrcPath, dir });
}

test('free ports are distinct, bindable, and outside the kernel ephemeral range that outgoing connections draw from', async () => {
  const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number) as [number, number];
  const ports = await freePorts(40);
  assert.equal(new Set(ports).size, 40);
  for (const port of ports) assert.ok(port < low || port > high, `${port} is inside ${low}-${high}`);
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(ports[0], '127.0.0.1', resolve));
  await new Promise<void>((resolve) => server.close(() => resolve()));
  assert.deepEqual(portPool([32768, 60999]), [10_000, 32767]);
  assert.deepEqual(portPool([1024, 60000]), [60001, 65535]);
});

test('a tor whose control port was taken after the probe fails with tor_port_in_use, which is retried', async () => {
  const port = await freePort();
  // It hangs up on every connection: a squatter that kept them open would also hold close() open.
  const squatter = net.createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => squatter.listen(port, '127.0.0.1', resolve));
  try {
    const proc = await quietTor('clash', port);
    await assert.rejects(waitForControl(proc, port, 20_000), (e: unknown) => isPortClash(e) && /Address already in use/.test((e as Error).message));
    assert.equal(proc.isRunning(), false);
  } finally {
    await new Promise<void>((resolve) => squatter.close(() => resolve()));
  }
  let calls = 0;
  const value = await retryOnPortClash(async (n) => {
    calls++;
    if (n < 3) throw new P2pdbError('tor_port_in_use', 'taken');
    return n;
  });
  assert.deepEqual([value, calls], [3, 3]);
  await assert.rejects(
    retryOnPortClash(async () => {
      calls++;
      throw new P2pdbError('tor_process', 'other');
    }),
    (e: unknown) => isP2pdbError(e) && e.code === 'tor_process',
  );
  assert.equal(calls, 4, 'other errors are not retried');
});

test('a control port that answers for another tor is a port clash, and the tor we started is stopped', async () => {
  const [portA, portB] = (await freePorts(2)) as [number, number];
  const a = await quietTor('owner', portA);
  const b = await quietTor('latecomer', portB);
  try {
    const control = await waitForControl(a, portA, 20_000);
    assert.equal((await control.getInfo('process/pid')).trim(), String(a.pid));
    control.close();
    // b's own port is portB; asking for portA reaches a, whose pid is not b's.
    await assert.rejects(waitForControl(b, portA, 20_000), (e: unknown) => isPortClash(e) && /not latecomer/.test((e as Error).message));
    assert.equal(b.isRunning(), false);
    assert.equal(a.isRunning(), true);
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
});
