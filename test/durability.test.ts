/**
 * An acknowledged entry survives the node being killed, and on PostgreSQL the database server
 * too; garbage never costs what is stored.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveConfig } from '../src/config/config.js';
import { startNode } from '../src/node/node.js';
import { silentLogger } from '../src/util/log.js';
import { nodeDatabaseSetting, onBackend, TEST_BACKEND } from './helpers/backend.js';
import { getJson, makeEntry, postJson, testKey, type MadeEntry } from './helpers/entries.js';
import { spawnNode } from './helpers/node-process.js';
import { usePostgres } from './helpers/postgres.js';
import { tempDir } from './helpers/tmp.js';

const postgres = TEST_BACKEND === 'postgres' ? usePostgres() : undefined;

test(onBackend('entries acknowledged before a SIGKILL are there after restart'), async () => {
  const dataDir = tempDir('p2pdb-crash-');
  const database = await nodeDatabaseSetting();
  const table = testKey();
  const alice = testKey();
  const entries = await Promise.all(Array.from({ length: 20 }, (_, i) => makeEntry({ table, to: alice, text: `durable ${i}` })));

  const first = await spawnNode(dataDir, 12, database);
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

  const second = await spawnNode(dataDir, 12, database);
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

test(onBackend('a flood of garbage neither crashes the node nor touches stored entries'), async () => {
  const dataDir = tempDir('p2pdb-garbage-');
  const table = testKey();
  const alice = testKey();
  const keep = await makeEntry({ table, to: alice, text: 'keep me' });
  const node = await spawnNode(dataDir, 12, await nodeDatabaseSetting());
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

test(
  onBackend('PostgreSQL: entries acknowledged before a SIGKILL of the postmaster are there after it restarts; the node recovers by itself'),
  { skip: TEST_BACKEND !== 'postgres' && 'PostgreSQL only' },
  async () => {
    // A server of this test's own, fsync on, as in production: the shared one runs without fsync.
    const server = await postgres!.privateServer({ fsync: true });
    const database = await server.createDatabase();
    const node = await startNode(resolveConfig({ dataDir: tempDir('p2pdb-pgcrash-'), port: 0, powBits: 12, database }), { log: silentLogger });
    try {
      const table = testKey();
      const alice = testKey();
      const pool = await Promise.all(Array.from({ length: 60 }, (_, i) => makeEntry({ table, to: alice, text: `sustained ${i}` })));
      const acknowledged = new Set<string>();
      const refusals = new Map<string, number>();
      let killed = false;
      const killedAt = new Promise<void>((resolve) => {
        // Sustained ingest: 6 clients put one entry after another; the postmaster is killed
        // after the 25th acknowledgement, while the others are in flight.
        const client = async (k: number) => {
          for (let i = k; i < pool.length; i += 6) {
            const e: MadeEntry = pool[i]!;
            const res = await postJson(`${node.url}/put/${e.idHex}`, e.json).catch(() => undefined);
            if (res?.status === 201 || res?.status === 200) acknowledged.add(e.idHex);
            else if (res) refusals.set(String(res.body?.error?.code), (refusals.get(String(res.body?.error?.code)) ?? 0) + 1);
            if (!killed && acknowledged.size >= 25) {
              killed = true;
              void server.kill('SIGKILL').then(resolve);
            }
          }
        };
        void Promise.all([0, 1, 2, 3, 4, 5].map(client)).then(() => resolve());
      });
      await killedAt;
      assert.ok(killed, `the postmaster was killed (acknowledged ${acknowledged.size})`);
      // While the server is down, a put is refused with a code and nothing is claimed stored.
      const during = await makeEntry({ table, to: alice, text: 'while down' });
      const down = await postJson(`${node.url}/put/${during.idHex}`, during.json);
      assert.equal(down.status, 503, JSON.stringify(down.body));
      assert.equal(down.body.error?.code, 'store_unavailable');
      for (const code of refusals.keys()) assert.equal(code, 'store_unavailable', `refusals: ${JSON.stringify([...refusals])}`);

      await server.start(); // crash recovery replays the WAL here
      // The same node, not restarted, stores again once the server is back.
      const after = await makeEntry({ table, to: alice, text: 'after restart' });
      assert.equal((await postJson(`${node.url}/put/${after.idHex}`, after.json)).status, 201);
      const ids = [...acknowledged];
      const res = await getJson(`${node.url}/get/?ids=${ids.join(',')}&limit=1000`);
      assert.equal(res.status, 200);
      const found = new Set(res.body.entries.map((e: { id: string }) => e.id));
      for (const id of ids) assert.ok(found.has(id), `acknowledged entry ${id} lost`);
    } finally {
      await node.close();
    }
  },
);
