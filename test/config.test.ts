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
