import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { DEFAULT_CONFIG, isLoopback, loadConfig, resolveConfig } from '../src/config/config.js';
import { tempDir } from './helpers/tmp.js';

test('defaults: loopback, 21 bits, every table', () => {
  const c = resolveConfig();
  assert.equal(c.host, '127.0.0.1');
  assert.equal(c.powBits, 21);
  assert.equal(c.allowedTables, '*');
  assert.equal(c.durability, 'full');
  assert.equal(c.port, DEFAULT_CONFIG.port);
});

test('loopback addresses only', () => {
  for (const h of ['127.0.0.1', '127.1.2.3', '::1', 'localhost']) assert.ok(isLoopback(h), h);
  for (const h of ['0.0.0.0', '::', '10.0.0.1', '::ffff:127.0.0.1', 'example.onion', '']) assert.ok(!isLoopback(h), h);
});

test('layers: file < environment < flags', () => {
  const dir = tempDir();
  const file = path.join(dir, 'config.json');
  writeFileSync(file, JSON.stringify({ port: 1111, powBits: 18, allowedTables: ['a'.repeat(64)] }));
  const fromFile = loadConfig({ file, env: {} });
  assert.equal(fromFile.port, 1111);
  assert.equal(fromFile.powBits, 18);
  assert.deepEqual(fromFile.allowedTables, ['a'.repeat(64)]);
  const fromEnv = loadConfig({ file, env: { P2PDB_PORT: '2222', P2PDB_ALLOWED_TABLES: '*' } });
  assert.equal(fromEnv.port, 2222);
  assert.equal(fromEnv.allowedTables, '*');
  const fromFlags = loadConfig({ file, env: { P2PDB_PORT: '2222' }, flags: { port: 3333 } });
  assert.equal(fromFlags.port, 3333);
  assert.equal(fromFlags.powBits, 18);
});

test('the data dir config.json is read when present, and a broken one is an error', () => {
  const dir = tempDir();
  assert.equal(loadConfig({ flags: { dataDir: dir }, env: {} }).port, DEFAULT_CONFIG.port);
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ port: 4444 }));
  assert.equal(loadConfig({ flags: { dataDir: dir }, env: {} }).port, 4444);
  writeFileSync(path.join(dir, 'config.json'), '{oops');
  assert.throws(() => loadConfig({ flags: { dataDir: dir }, env: {} }), { code: 'config_invalid' });
});

test('invalid values are refused with config_invalid', () => {
  for (const bad of [
    { host: '0.0.0.0' },
    { port: 70000 },
    { port: 'abc' },
    { powBits: 2 },
    { allowedTables: ['nothex'] },
    { durability: 'sometimes' },
    { tor: 'maybe' },
  ]) {
    assert.throws(() => resolveConfig(bad), { code: 'config_invalid' }, JSON.stringify(bad));
  }
});

test('tor: off by default; managed and attach; "auto" still means managed', () => {
  const c = resolveConfig();
  assert.equal(c.tor, 'off');
  assert.equal(c.torBinary, 'tor');
  assert.deepEqual(c.torExtraLines, []);
  assert.equal(c.torControl, undefined);
  assert.equal(resolveConfig({ tor: 'managed' }).tor, 'managed');
  assert.equal(resolveConfig({ tor: 'auto' }).tor, 'managed');
  const attach = resolveConfig({ tor: 'attach', torControl: '127.0.0.1:9051', torSocks: '127.0.0.1:9050', torControlPassword: 'pw' });
  assert.equal(attach.tor, 'attach');
  assert.equal(attach.torControl, '127.0.0.1:9051');
  assert.equal(attach.torSocks, '127.0.0.1:9050');
  assert.equal(attach.torControlPassword, 'pw');
  assert.equal(resolveConfig({ tor: 'attach', torControl: 'unix:/run/tor/control' }).torControl, 'unix:/run/tor/control');
});

test('tor settings come from the file, the environment and flags, in that order', () => {
  const dir = tempDir();
  const file = path.join(dir, 'config.json');
  writeFileSync(file, JSON.stringify({ tor: 'managed', torBinary: '/usr/sbin/tor', torExtraLines: ['UseBridges 1', 'Bridge 127.0.0.1:1 ' + 'A'.repeat(40)] }));
  const fromFile = loadConfig({ file, env: {} });
  assert.equal(fromFile.tor, 'managed');
  assert.equal(fromFile.torBinary, '/usr/sbin/tor');
  assert.deepEqual(fromFile.torExtraLines, ['UseBridges 1', 'Bridge 127.0.0.1:1 ' + 'A'.repeat(40)]);
  const env = {
    P2PDB_TOR: 'attach',
    P2PDB_TOR_CONTROL: '127.0.0.1:9151',
    P2PDB_TOR_CONTROL_PASSWORD: 'secret',
    P2PDB_TOR_SOCKS: '127.0.0.1:9150',
    P2PDB_TOR_BINARY: '/opt/tor',
  };
  const fromEnv = loadConfig({ file, env });
  assert.equal(fromEnv.tor, 'attach');
  assert.equal(fromEnv.torControl, '127.0.0.1:9151');
  assert.equal(fromEnv.torControlPassword, 'secret');
  assert.equal(fromEnv.torSocks, '127.0.0.1:9150');
  assert.equal(fromEnv.torBinary, '/opt/tor');
  const fromFlags = loadConfig({ file, env, flags: { tor: 'off', torControl: 'unix:/tmp/ctl' } });
  assert.equal(fromFlags.tor, 'off');
  assert.equal(fromFlags.torControl, 'unix:/tmp/ctl');
});

test('tor addresses must be loopback; attach needs a control port; Tor on needs 127.0.0.1', () => {
  for (const bad of [
    { tor: 'attach' },
    { tor: 'attach', torControl: '10.0.0.1:9051' },
    { tor: 'attach', torControl: '0.0.0.0:9051' },
    { tor: 'attach', torControl: 'localhost:9051' },
    { tor: 'attach', torControl: '127.0.0.1:0' },
    { tor: 'attach', torControl: '127.0.0.1:70000' },
    { tor: 'attach', torControl: 'unix:relative/path' },
    { torSocks: '192.168.1.2:9050' },
    { torSocks: '[::]:9050' },
    { torSocks: '9050' },
    { tor: 'managed', host: '::1' },
    { tor: 'managed', host: '127.0.0.2' },
    { torExtraLines: ['SocksPort 9050\nControlPort 0.0.0.0:9051'] },
    { torExtraLines: 42 },
    { torBinary: 5 },
  ]) {
    assert.throws(() => resolveConfig(bad), { code: 'config_invalid' }, JSON.stringify(bad));
  }
  // Tor off: any loopback host is still fine.
  assert.equal(resolveConfig({ host: '::1' }).host, '::1');
});

test('onion DoS defences: on by default; file < environment < flags; bad values refused', () => {
  const d = resolveConfig();
  assert.equal(d.onionPow, true);
  assert.equal(d.onionPowQueueRate, 250);
  assert.equal(d.onionPowQueueBurst, 2500);
  assert.equal(d.onionMaxStreams, 64);
  const dir = tempDir();
  const file = path.join(dir, 'config.json');
  writeFileSync(file, JSON.stringify({ onionPow: false, onionPowQueueRate: 10, onionPowQueueBurst: 100, onionMaxStreams: 8 }));
  const fromFile = loadConfig({ file, env: {} });
  assert.deepEqual([fromFile.onionPow, fromFile.onionPowQueueRate, fromFile.onionPowQueueBurst, fromFile.onionMaxStreams], [false, 10, 100, 8]);
  const env = { P2PDB_ONION_POW: 'on', P2PDB_ONION_POW_QUEUE_RATE: '20', P2PDB_ONION_POW_QUEUE_BURST: '200', P2PDB_ONION_MAX_STREAMS: '0' };
  const fromEnv = loadConfig({ file, env });
  assert.deepEqual([fromEnv.onionPow, fromEnv.onionPowQueueRate, fromEnv.onionPowQueueBurst, fromEnv.onionMaxStreams], [true, 20, 200, 0]);
  const fromFlags = loadConfig({ file, env, flags: { onionPow: 'off', onionMaxStreams: '16' } });
  assert.deepEqual([fromFlags.onionPow, fromFlags.onionMaxStreams], [false, 16]);
  const refused = (input: Record<string, unknown>, pattern: RegExp) =>
    assert.throws(() => resolveConfig(input), (e: unknown) => (e as { code?: string }).code === 'config_invalid' && pattern.test((e as Error).message));
  refused({ onionPow: 'maybe' }, /onionPow must be on or off/);
  refused({ onionPowQueueRate: 0 }, /onionPowQueueRate/);
  refused({ onionPowQueueRate: 300, onionPowQueueBurst: 200 }, /at least onionPowQueueRate/);
  refused({ onionMaxStreams: 70000 }, /onionMaxStreams/);
});
