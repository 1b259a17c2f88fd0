/**
 * The local PostgreSQL server harness (src/store/postgres/local-server.ts, test/helpers/postgres.ts)
 * against real servers: crash durability, isolation of databases, loopback-only listening and
 * no process left behind.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { test } from 'node:test';
import pg from 'pg';
import { P2pdbError } from '../src/errors.js';
import { findPostgresBinDir, isProcessAlive, postgresProcessesFor, startLocalPostgres } from '../src/store/postgres/local-server.js';
import { freePort } from '../src/tor/ports.js';
import { usePostgres } from './helpers/postgres.js';

const postgres = usePostgres();

/** A connected client; errors of a connection the server drops (kill, shutdown) are recorded, not thrown. */
async function connect(url: string): Promise<pg.Client & { dropped: Error[] }> {
  const client = Object.assign(new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 }), { dropped: [] as Error[] });
  client.on('error', (err) => client.dropped.push(err));
  await client.connect();
  return client;
}

async function query<T extends pg.QueryResultRow>(url: string, sql: string, values: unknown[] = []): Promise<T[]> {
  const client = await connect(url);
  try {
    return (await client.query<T>(sql, values)).rows;
  } finally {
    await client.end();
  }
}

/** Local addresses (hex, as in /proc/net/tcp*) of the sockets listening on TCP `port`. */
function listeningAddresses(port: number): string[] {
  const found: string[] = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!existsSync(file)) continue;
    for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
      const [, local, , state] = line.trim().split(/\s+/);
      if (!local || state !== '0A') continue; // 0A: LISTEN
      const [addr, hexPort] = local.split(':');
      if (parseInt(hexPort ?? '', 16) === port) found.push(addr ?? '');
    }
  }
  return found;
}

test('database() gives fresh, empty databases that do not see each other', async () => {
  const a = await postgres.database();
  const b = await postgres.database();
  assert.notEqual(a, b);
  assert.match(a, /^postgres:\/\/postgres@127\.0\.0\.1:\d+\/p2pdb_[0-9a-f]{16}$/);
  await query(a, 'CREATE TABLE things (id int PRIMARY KEY, name text)');
  await query(a, "INSERT INTO things VALUES (1, 'one'), (2, 'two')");
  assert.deepEqual(await query(a, 'SELECT count(*)::int AS n FROM things'), [{ n: 2 }]);

  const tablesInB = await query<{ n: number }>(b, "SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = 'public'");
  assert.deepEqual(tablesInB, [{ n: 0 }]);
  await assert.rejects(query(b, 'SELECT * FROM things'), /relation "things" does not exist/);

  // Named databases, and dropping them.
  const name = `named_${process.pid}_${Date.now()}`;
  const named = await postgres.database(name);
  assert.ok(named.endsWith(`/${name}`));
  await assert.rejects(postgres.database(name), /already exists/);
  await postgres.dropDatabase(named);
  await assert.rejects(query(named, 'SELECT 1'), /does not exist/);
  await assert.rejects(postgres.database('Not A Name'), (err) => err instanceof P2pdbError && err.code === 'config_invalid');
});

test('the server listens on 127.0.0.1 and its own unix socket only', async () => {
  const url = await postgres.serverUrl();
  assert.match(url, /^postgres:\/\/postgres@127\.0\.0\.1:\d+\/postgres$/);
  const [row] = await query<{ listen: string; addr: string; sockets: string }>(
    url,
    "SELECT current_setting('listen_addresses') AS listen, host(inet_server_addr()) AS addr, current_setting('unix_socket_directories') AS sockets",
  );
  assert.equal(row?.listen, '127.0.0.1');
  assert.equal(row?.addr, '127.0.0.1');
  assert.ok(row?.sockets.startsWith('/') && !row.sockets.includes(',') && row.sockets !== '/var/run/postgresql', row?.sockets);
  if (existsSync('/proc/net/tcp')) {
    // What the kernel says is listening on the port: 127.0.0.1 (0100007F) only, no IPv6, no wildcard.
    assert.deepEqual(listeningAddresses(Number(new URL(url).port)), ['0100007F']);
  }
  await assert.rejects(
    startLocalPostgres({ settings: { listen_addresses: '*' } }),
    (err) => err instanceof P2pdbError && err.code === 'config_invalid',
  );
});

test('every committed row survives a SIGKILL of the postmaster; the uncommitted one does not', async () => {
  const server = await postgres.privateServer(); // fsync on (the default)
  const db = await server.createDatabase();
  const writer = await connect(db);
  await writer.query('CREATE TABLE entries (id int PRIMARY KEY, body text NOT NULL)');
  for (let id = 1; id <= 200; id++) {
    await writer.query('INSERT INTO entries VALUES ($1, $2)', [id, `entry ${id}`]); // one commit each
  }
  await writer.query('BEGIN');
  await writer.query("INSERT INTO entries SELECT g, 'batch ' || g FROM generate_series(201, 1200) g");
  await writer.query('COMMIT');
  const open = await connect(db);
  await open.query('BEGIN');
  await open.query("INSERT INTO entries VALUES (5000, 'never committed')");

  const before = server.pid!;
  await server.kill('SIGKILL');
  assert.equal(server.isRunning(), false);
  assert.equal(isProcessAlive(before), false);
  assert.deepEqual(postgresProcessesFor(server.dataDir), []);
  await assert.rejects(connect(db), /ECONNREFUSED/);
  await Promise.all([writer.end().catch(() => undefined), open.end().catch(() => undefined)]);

  await server.start();
  assert.notEqual(server.pid, before);
  const [row] = await query<{ n: number; max: number; sum: string }>(db, 'SELECT count(*)::int AS n, max(id) AS max, sum(id)::text AS sum FROM entries');
  assert.deepEqual(row, { n: 1200, max: 1200, sum: String((1200 * 1201) / 2) });
  assert.deepEqual(await query(db, "SELECT body FROM entries WHERE id IN (1, 200, 201, 1200) ORDER BY id"), [
    { body: 'entry 1' },
    { body: 'entry 200' },
    { body: 'batch 201' },
    { body: 'batch 1200' },
  ]);
  // The restart really was a crash recovery.
  assert.match(readFileSync(server.logFile, 'utf8'), /not properly shut down; automatic recovery in progress/);
  await server.stop();
});

test('stop() leaves no postgres process behind, removes the directory and is idempotent', async () => {
  const server = await postgres.privateServer({ fsync: false });
  const client = await connect(server.url); // a backend, so there is more than the postmaster to stop
  const processes = postgresProcessesFor(server.dataDir);
  assert.ok(processes.includes(server.pid!), `postmaster ${server.pid} in ${processes.join(' ')}`);
  assert.ok(processes.length >= 4, `postmaster and its children: ${processes.join(' ')}`);

  await server.stop();
  assert.deepEqual(processes.filter(isProcessAlive), []);
  assert.deepEqual(postgresProcessesFor(server.dataDir), []);
  assert.equal(existsSync(server.dir), false);
  await client.end().catch(() => undefined);
  await server.stop(); // again: nothing to do
  await assert.rejects(server.start(), (err) => err instanceof P2pdbError && err.code === 'postgres_failed');
});

test('an explicit port that is already taken is reported as postgres_port_in_use', async () => {
  const port = await freePort();
  const squatter = net.createServer();
  await new Promise<void>((resolve) => squatter.listen({ port, host: '127.0.0.1', exclusive: true }, resolve));
  try {
    await assert.rejects(startLocalPostgres({ port, fsync: false }), (err) => {
      assert.ok(err instanceof P2pdbError && err.code === 'postgres_port_in_use', String(err));
      return true;
    });
  } finally {
    await new Promise((resolve) => squatter.close(resolve));
  }
});

test('missing server binaries are a postgres_unavailable error that says how to install them', () => {
  assert.throws(
    () => findPostgresBinDir('/nonexistent/postgresql/bin'),
    (err) => err instanceof P2pdbError && err.code === 'postgres_unavailable' && err.message.includes('apt-get install -y postgresql'),
  );
});
