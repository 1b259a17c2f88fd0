/** An acknowledged entry survives the node being killed; garbage never costs what is stored. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { getJson, makeEntry, postJson, testKey } from './helpers/entries.js';
import { spawnNode } from './helpers/node-process.js';
import { tempDir } from './helpers/tmp.js';

test('entries acknowledged before a SIGKILL are there after restart', async () => {
  const dataDir = tempDir('p2pdb-crash-');
  const table = testKey();
  const alice = testKey();
  const entries = await Promise.all(Array.from({ length: 20 }, (_, i) => makeEntry({ table, to: alice, text: `durable ${i}` })));

  const first = await spawnNode(dataDir);
  const acknowledged: string[] = [];
  // Many puts in flight; kill the node the moment the tenth acknowledgement arrives.
  await new Promise<void>((resolve) => {
    let settled = 0;
    for (const e of entries) {
      postJson(`${first.url}/put/${e.idHex}`, e.json)
        .then((res) => {
          if (res.status === 201) acknowledged.push(e.idHex);
          if (acknowledged.length === 10) first.child.kill('SIGKILL');
        })
        .catch(() => undefined)
        .finally(() => {
          if (++settled === entries.length) resolve();
        });
    }
  });
  await first.exited;
  assert.ok(acknowledged.length >= 10, `acknowledged ${acknowledged.length}`);

  const second = await spawnNode(dataDir);
  try {
    for (let i = 0; i < acknowledged.length; i += 100) {
      const ids = acknowledged.slice(i, i + 100);
      const res = await getJson(`${second.url}/get/?ids=${ids.join(',')}&limit=1000`);
      assert.equal(res.status, 200);
      const found = new Set(res.body.entries.map((e: { id: string }) => e.id));
      for (const id of ids) assert.ok(found.has(id), `acknowledged entry ${id} lost`);
    }
    // The restarted node keeps accepting, and a repeated put is a duplicate, not an error.
    const again = entries.find((e) => acknowledged.includes(e.idHex))!;
    assert.equal((await postJson(`${second.url}/put/${again.idHex}`, again.json)).status, 200);
  } finally {
    second.child.kill('SIGTERM');
    await second.exited;
  }
});

test('a flood of garbage neither crashes the node nor touches stored entries', async () => {
  const dataDir = tempDir('p2pdb-garbage-');
  const table = testKey();
  const alice = testKey();
  const keep = await makeEntry({ table, to: alice, text: 'keep me' });
  const node = await spawnNode(dataDir);
  try {
    assert.equal((await postJson(`${node.url}/put/${keep.idHex}`, keep.json)).status, 201);
    const junk: Array<[string, string, string]> = [
      [`/put/${keep.idHex}`, '\u0000\u0001\u0002', 'application/json'],
      [`/put/${keep.idHex}`, '{"v":1,"table":' + '"A"'.repeat(1000), 'application/json'],
      ['/put/', '[' + '{},'.repeat(10) + '{}]', 'application/json'],
      ['/put/', 'x\n'.repeat(100), 'application/x-ndjson'],
      [`/put/${keep.idHex}`, 'table=%ZZ&to=', 'application/x-www-form-urlencoded'],
      ['/put/', JSON.stringify([{ ...keep.json, payload: Buffer.alloc(10).toString('base64') }]), 'application/json'],
    ];
    for (const [path, body, type] of junk) {
      const res = await fetch(node.url + path, { method: 'POST', headers: { 'content-type': type }, body });
      assert.ok(res.status < 500, `${path} ${type}: ${res.status}`);
      await res.arrayBuffer();
    }
    const res = await getJson(`${node.url}/get/?after=0`);
    assert.equal(res.body.entries.length, 1);
    assert.equal(res.body.entries[0].id, keep.idHex);
    assert.equal(res.body.entries[0].payload, keep.json.payload);
  } finally {
    node.child.kill('SIGTERM');
    await node.exited;
  }
});
