/**
 * `p2pdb db copy` against real databases: SQLite files in a temp dir and databases on the
 * run's real PostgreSQL server, both directions; the CLI as a child process for resuming
 * (after --limit, and after a SIGKILL mid-copy) and for its verification line.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isP2pdbError } from '../src/errors.js';
import { newIdentity } from '../src/identity/onion-key.js';
import { copyDatabase } from '../src/store/copy/copy.js';
import { SqliteCopyConnection } from '../src/store/copy/sqlite.js';
import { parseDatabase, type DatabaseLocator } from '../src/store/database-locator.js';
import { openStore } from '../src/store/open.js';
import type { Store, StoredEntry } from '../src/store/types.js';
import { CLI_MAIN, cleanEnv, closedPort, runCli } from './helpers/cli.js';
import { usePostgres } from './helpers/postgres.js';
import { fakeEntry, fakeRecipient, fakeTable, tempDir } from './helpers/store-fixtures.js';

const postgres = usePostgres();
let root: { dir: string; remove: () => Promise<void> };
let n = 0;
before(async () => {
  root = await tempDir('db-copy-test');
});
after(async () => {
  await root.remove();
});

function sqliteAt(name: string): DatabaseLocator {
  return { kind: 'sqlite', filename: path.join(root.dir, `${++n}-${name}`) };
}

async function freshPostgres(): Promise<DatabaseLocator> {
  return parseDatabase(await postgres.database(), root.dir);
}

function isCode(code: string) {
  return (e: unknown) => isP2pdbError(e) && e.code === code;
}

/**
 * A source store: `count` entries over 6 tables and 40 recipients, received over several
 * seconds (a clock stepping 400 ms per commit, so received_seconds has many rows), with an
 * empty payload among them, plus peers, a penalty and a range cursor.
 */
async function fillSource(database: DatabaseLocator, count: number): Promise<void> {
  let now = 1_750_000_000_000;
  const store = await openStore({ database, durability: 'normal', clock: () => (now += 400) });
  try {
    const tables = Array.from({ length: 6 }, (_, i) => fakeTable(200 + i * 50));
    const recipients = Array.from({ length: 40 }, () => fakeRecipient());
    for (let done = 0; done < count; ) {
      const size = Math.min(250, count - done);
      const batch = Array.from({ length: size }, (_, i) =>
        fakeEntry({ table: tables[(done + i) % (done < count / 2 ? 6 : 3)]!, to: recipients[(done + i * 7) % 40]!, payloadBytes: (done + i) % 97 === 0 ? 0 : 100 + ((done + i) % 400) }),
      );
      const outcomes = await store.insert(batch);
      assert.ok(outcomes.every((o) => o === 'stored'));
      done += size;
    }
    const peers = store.peers();
    const [a, b] = [newIdentity().address, newIdentity().address];
    await peers.add(a, 'manual', 1_750_000_000_000);
    await peers.add(b, 'config', 1_750_000_000_500);
    await peers.recordFailure(b, 1_750_000_001_000, () => 1_750_000_100_000);
    await store.syncState.penalize(a, 3, 1_750_000_002_000, { threshold: 100, banMs: 60_000 });
    await store.syncState.saveRangeCursor({ peer: a, table: tables[0]!.fingerprint, prefix: 'a1', cursor: 'opaque-cursor', claimed: 500, fetched: 120, updatedAt: 1_750_000_003_000 });
  } finally {
    await store.close();
  }
}

/** Everything a client or the node can read back, in a form compared byte for byte. */
async function snapshot(database: DatabaseLocator) {
  const store = await openStore({ database, durability: 'normal' });
  try {
    const entries: StoredEntry[] = [];
    for (let afterSeq = 0; ; ) {
      const page = await store.query({ afterSeq, limit: 1000 });
      entries.push(...page.entries);
      if (page.nextAfterSeq === null) break;
      afterSeq = page.nextAfterSeq;
    }
    const mid = entries[Math.floor(entries.length / 2)]!.receivedAt;
    const since = await store.query({ receivedSince: mid, limit: 100_000 });
    const peers = await store.peers().list();
    const penalties = await Promise.all(peers.map((p) => store.syncState.penaltyOf(p.onion)));
    const cursors = await Promise.all(peers.map((p) => store.syncState.rangeCursors(p.onion)));
    return {
      entries: entries.map((e) => ({ seq: e.seq, id: e.id.toString('hex'), receivedAt: e.receivedAt, entry: e.entry })),
      count: await store.count(),
      byTable: (await store.countByTable()).map((t) => `${t.fingerprint.toString('hex')}:${t.count}`).sort(),
      lastSeq: await store.lastSeq(),
      // `since` becomes a seq bound through received_seconds: the same answer means the map came along.
      since: since.entries.map((e) => e.seq),
      peers,
      penalties,
      cursors: cursors.map((list) => list.map((c) => ({ ...c, table: c.table.toString('hex') }))),
    };
  } finally {
    await store.close();
  }
}

/** Adds one entry of a new table: the copied store must go on taking writes (seq, table key ids). */
async function addOne(database: DatabaseLocator, lastSeq: number): Promise<void> {
  const store: Store = await openStore({ database, durability: 'normal' });
  try {
    const e = fakeEntry({ table: fakeTable(), to: fakeRecipient() });
    assert.deepEqual(await store.insert([e]), ['stored']);
    assert.equal(await store.lastSeq(), lastSeq + 1);
    const page = await store.query({ ids: [e.id], limit: 1 });
    assert.ok(page.entries[0]!.entry.table.equals(e.entry.table));
  } finally {
    await store.close();
  }
}

describe('db copy: SQLite → PostgreSQL → SQLite', () => {
  test('a round trip keeps every entry byte for byte, with seq, received_at, counts, peers and sync state', async () => {
    const source = sqliteAt('source.sqlite');
    await fillSource(source, 3000);
    const pg = await freshPostgres();
    const back = sqliteAt('back.sqlite');

    const there = await copyDatabase({ source, target: pg, batchEntries: 700 });
    assert.equal(there.complete, true);
    assert.equal(there.copied, 3000);
    assert.equal(there.tables, 6);
    const again = await copyDatabase({ source: pg, target: back });
    assert.equal(again.copied, 3000);

    const [a, b, c] = [await snapshot(source), await snapshot(pg), await snapshot(back)];
    assert.equal(a.entries.length, 3000);
    assert.ok(a.peers.length === 2 && a.cursors.flat().length === 1 && a.penalties.some((p) => p.penalty === 3), 'the fixture has sync state');
    assert.ok(a.since.length > 0 && a.since.length < 3000);
    assert.deepEqual(b, a);
    assert.deepEqual(c, a);

    await addOne(pg, 3000);
    await addOne(back, 3000);
  });

  test('a target holding other data is refused, and so is the source itself', async () => {
    const source = sqliteAt('source.sqlite');
    await fillSource(source, 300);
    const other = await freshPostgres();
    await fillSource(other, 100);
    await assert.rejects(copyDatabase({ source, target: other }), isCode('db_copy_target_conflict'));
    await assert.rejects(copyDatabase({ source, target: { kind: 'sqlite', filename: source.kind === 'sqlite' ? source.filename : '' } }), isCode('db_copy_same_database'));
    const url = other.kind === 'postgres' ? other.url : '';
    // Another spelling of the same database: the server tells.
    const alias = new URL(url);
    alias.hostname = 'localhost';
    await assert.rejects(copyDatabase({ source: other, target: parseDatabase(alias.toString(), root.dir) }), isCode('db_copy_same_database'));
  });

  test('a database a node has open is refused, on both backends', async () => {
    const source = sqliteAt('source.sqlite');
    await fillSource(source, 50);
    const running = await openStore({ database: source, durability: 'normal' });
    try {
      await assert.rejects(copyDatabase({ source, target: sqliteAt('t.sqlite') }), isCode('node_running'));
    } finally {
      await running.close();
    }
    const pg = await freshPostgres();
    await copyDatabase({ source, target: pg });
    const node = await openStore({ database: pg, durability: 'normal' });
    try {
      await node.count(); // its pool holds a connection now, as a serving node's does
      await assert.rejects(copyDatabase({ source: pg, target: sqliteAt('t.sqlite') }), isCode('node_running'));
    } finally {
      await node.close();
    }
  });

  test('verification catches a target that differs where the resume check does not look', async () => {
    const source = sqliteAt('source.sqlite');
    await fillSource(source, 1000);
    const target = sqliteAt('target.sqlite');
    await copyDatabase({ source, target });
    const conn = await SqliteCopyConnection.open(target.kind === 'sqlite' ? target.filename : '', 'target');
    await conn.run('UPDATE entries SET id = ? WHERE seq = 7', [Buffer.alloc(32, 7)]);
    await conn.close();
    await assert.rejects(copyDatabase({ source, target }), (e: unknown) => isCode('db_copy_mismatch')(e) && /fingerprints differ/.test((e as Error).message));
  });
});

describe('p2pdb db copy (CLI)', () => {
  /** The node's data dir, its config naming the source, and an env whose port nothing listens on. */
  async function nodeDir(database: DatabaseLocator): Promise<{ dir: string; env: Record<string, string> }> {
    const dir = path.join(root.dir, `${++n}-data`);
    const setting = database.kind === 'sqlite' ? database.filename : database.url;
    return { dir, env: { P2PDB_DATABASE: setting, P2PDB_PORT: String(await closedPort()) } };
  }

  test('continues after --limit and prints the verification line', async () => {
    const source = sqliteAt('source.sqlite');
    await fillSource(source, 2000);
    const { dir, env } = await nodeDir(source);
    const pg = await postgres.database();
    const first = await runCli(['db', 'copy', '--data', dir, '--to', pg, '--limit', '800', '--batch', '300'], { env });
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /stopped at --limit: 800 of 2000 entries/);
    assert.match(first.stderr, /copied 800\/2000 entries/, 'plain progress lines on a pipe');
    const second = await runCli(['db', 'copy', '--data', dir, '--to', pg], { env });
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /copied 1200 entries \(continuing after the 800 already there\)/);
    assert.match(second.stdout, /^verified: 2000 entries, 6 tables, fingerprints match/m);
    assert.deepEqual(await snapshot(parseDatabase(pg, dir)), await snapshot(source));
  });

  test('killed mid-copy, the same command continues without duplicates or loss', async () => {
    const source = sqliteAt('source.sqlite');
    await fillSource(source, 4000);
    const { dir, env } = await nodeDir(source);
    const pg = await postgres.database();
    // One entry per transaction, so the copy takes seconds; killed once progress shows entries copied.
    const child = spawn(process.execPath, [CLI_MAIN, 'db', 'copy', '--data', dir, '--to', pg, '--batch', '1'], { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code, signal) => resolve(signal ? -1 : code)));
    let err = '';
    await new Promise<void>((resolve, reject) => {
      child.stderr.on('data', (c: Buffer) => {
        err += c.toString();
        if (/copied [1-9]\d*\/4000/.test(err)) {
          child.kill('SIGKILL');
          resolve();
        }
      });
      void exited.then(() => reject(new Error(`the copy ended before it could be killed: ${err}`)));
    });
    assert.equal(await exited, -1);
    const partial = await snapshot(parseDatabase(pg, dir)).catch(() => undefined);
    assert.ok(partial && partial.count > 0 && partial.count < 4000, `killed mid-copy (${partial?.count} entries there)`);
    assert.equal(partial.lastSeq, partial.count, 'a prefix by seq');

    const resumed = await runCli(['db', 'copy', '--data', dir, '--to', pg], { env });
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stdout, new RegExp(`copied ${4000 - partial.count} entries \\(continuing after the ${partial.count} already there\\)`));
    assert.match(resumed.stdout, /^verified: 4000 entries, 6 tables, fingerprints match/m);
    assert.deepEqual(await snapshot(parseDatabase(pg, dir)), await snapshot(source));
  });

  test('refusals are typed errors with exit code 1', async () => {
    const source = sqliteAt('source.sqlite');
    await fillSource(source, 100);
    const { dir, env } = await nodeDir(source);
    const same = await runCli(['db', 'copy', '--data', dir, '--to', source.kind === 'sqlite' ? source.filename : ''], { env });
    assert.equal(same.code, 1);
    assert.match(same.stderr, /error \[db_copy_same_database\]/);
    const missing = await runCli(['db', 'copy', '--data', dir, '--database', path.join(dir, 'nothing.sqlite'), '--to', 'x.sqlite'], { env });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /error \[db_copy_source_missing\]/);
    // A node answering on the configured port (here a stand-in answering /hello/ like one).
    const server = createServer((req, res) => res.end(req.url === '/hello/' ? JSON.stringify({ protocol: 'p2pdb/1' }) : ''));
    await new Promise<void>((resolve) => server.listen(Number(env.P2PDB_PORT), '127.0.0.1', resolve));
    try {
      const running = await runCli(['db', 'copy', '--data', dir, '--to', 'x.sqlite'], { env });
      assert.equal(running.code, 1);
      assert.match(running.stderr, /error \[node_running\]: the node of .* is running \(a p2pdb node answers on its port/);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    const usage = await runCli(['db', 'copy', '--data', dir], { env });
    assert.equal(usage.code, 2);
    const help = await runCli(['db', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /p2pdb db copy --to TARGET/);
  });
});
