/**
 * The entry store against real databases: SQLite files in temp dirs, or databases on a real
 * PostgreSQL server (P2PDB_TEST_BACKEND, helpers/backend.ts), and a real child process for
 * the crash test.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import sqlite3 from 'sqlite3';
import type { ValidEntry } from '../src/entry/validate.js';
import { isP2pdbError } from '../src/errors.js';
import type { DatabaseLocator } from '../src/store/database-locator.js';
import { openStore, type OpenStoreOptions } from '../src/store/open.js';
import { openSqliteStore } from '../src/store/sqlite/open.js';
import type { EntryFilter, Store, StoredEntry } from '../src/store/types.js';
import { freshDatabase, onBackend, sqliteOnly, TEST_BACKEND } from './helpers/backend.js';
import { fakeEntry, fakeRecipient, fakeTable, tempDir, type FakeTable } from './helpers/store-fixtures.js';

let root: { dir: string; remove: () => Promise<void> };
let n = 0;
before(async () => {
  root = await tempDir('store-test');
});
after(async () => {
  await root.remove();
});

function dbFile(): string {
  return path.join(root.dir, `db-${++n}`, 'p2pdb.sqlite');
}

/** A fresh database of the backend under test. */
function dbLocator(): Promise<DatabaseLocator> {
  return freshDatabase(path.join(root.dir, `db-${++n}`));
}

async function withStore<T>(opts: Partial<OpenStoreOptions>, fn: (store: Store, database: DatabaseLocator) => Promise<T>): Promise<T> {
  const database = opts.database ?? (await dbLocator());
  const store = await openStore({ ...opts, database });
  try {
    return await fn(store, database);
  } finally {
    await store.close();
  }
}

/** A clock the test moves by hand. */
function manualClock(start: number) {
  const c = { now: start, read: () => c.now };
  return c;
}

/** Every entry, in seq order, through the cursor. */
async function everything(store: Store): Promise<StoredEntry[]> {
  return collect(store, { limit: 1000 });
}

/** Follows nextAfterSeq to the end; checks each page's shape on the way. */
async function collect(store: Store, filter: EntryFilter): Promise<StoredEntry[]> {
  const out: StoredEntry[] = [];
  let afterSeq = filter.afterSeq;
  for (let pages = 0; pages < 10_000; pages++) {
    const page = await store.query({ ...filter, ...(afterSeq === undefined ? {} : { afterSeq }) });
    assert.ok(page.entries.length <= filter.limit);
    out.push(...page.entries);
    if (page.nextAfterSeq === null) return out;
    assert.equal(page.entries.length, filter.limit, 'a page with a cursor is full');
    assert.equal(page.nextAfterSeq, page.entries[page.entries.length - 1]!.seq);
    afterSeq = page.nextAfterSeq;
  }
  throw new Error('too many pages');
}

function hex(b: Buffer): string {
  return b.toString('hex');
}

describe(onBackend('entry store'), () => {
  test('creates the directory, stores entries and reads back every field byte-exact', async () => {
    const filename = path.join(root.dir, 'nested', 'a', 'b', 'p2pdb.sqlite');
    const database: DatabaseLocator = TEST_BACKEND === 'sqlite' ? { kind: 'sqlite', filename } : await dbLocator();
    const clock = manualClock(1_700_000_000_123);
    await withStore({ database, clock: clock.read }, async (store) => {
      if (TEST_BACKEND === 'sqlite') assert.ok(existsSync(filename));
      const t1 = fakeTable(294);
      const t2 = fakeTable(550);
      const to = fakeRecipient();
      const input = [
        fakeEntry({ table: t1, to, createdAt: 1, payloadBytes: 600 }),
        fakeEntry({ table: t2, to, createdAt: Number.MAX_SAFE_INTEGER, payloadBytes: 1, signatureBytes: 512 }),
        fakeEntry({ table: t1, to: fakeRecipient(), createdAt: 1_700_000_000_000, payloadBytes: 65_536 }),
      ];
      assert.deepEqual(await store.insert(input), ['stored', 'stored', 'stored']);
      const page = await store.query({ ids: input.map((e) => e.id), limit: 10 });
      assert.equal(page.nextAfterSeq, null);
      assert.equal(page.entries.length, 3);
      page.entries.forEach((got, i) => {
        const want = input[i]!;
        assert.equal(got.seq, i + 1);
        assert.equal(got.receivedAt, clock.now);
        assert.ok(got.id.equals(want.id));
        assert.deepEqual(got.entry, want.entry);
        for (const f of ['table', 'to', 'payload', 'signature', 'proof'] as const) {
          assert.ok(Buffer.isBuffer(got.entry[f]) && got.entry[f].equals(want.entry[f]), f);
        }
      });
    });
  });

  test('migrates through knex and sets the pragmas on every connection', { skip: sqliteOnly }, async () => {
    for (const durability of ['full', 'normal'] as const) {
      const filename = dbFile();
      const store = await openSqliteStore({ filename, durability, cacheMiB: 64, walAutocheckpointPages: 1234 });
      try {
        const { writer, reader } = await store.pragmas();
        const common = {
          journal_mode: 'wal',
          synchronous: durability === 'full' ? 2 : 1,
          foreign_keys: 1,
          busy_timeout: 5000,
          cache_size: -64 * 1024,
          wal_autocheckpoint: 1234,
        };
        assert.deepEqual(writer, { ...common, query_only: 0 });
        assert.deepEqual(reader, { ...common, query_only: 1 });
        const db = new sqlite3.Database(filename);
        const names = await new Promise<string[]>((resolve, reject) =>
          db.all<{ name: string }>('SELECT name FROM knex_migrations ORDER BY id', (err, rows) =>
            err ? reject(err) : resolve(rows.map((r) => r.name)),
          ),
        );
        await new Promise((resolve) => db.close(resolve));
        assert.deepEqual(names, ['0001_entries', '0002_peers', '0003_sync_transport', '0004_sync_penalties', '0005_entries_recipient_table']);
        // A new file gets 8 KiB pages (pragmas.ts says why).
        assert.equal((await store.pageSize()), 8192);
      } finally {
        await store.close();
      }
    }
  });

  test('a file that is not a database is refused with a code', { skip: sqliteOnly }, async () => {
    const filename = dbFile();
    await mkdir(path.dirname(filename), { recursive: true });
    await writeFile(filename, Buffer.alloc(8192, 7));
    await assert.rejects(openStore({ database: { kind: 'sqlite', filename } }), (e) => isP2pdbError(e) && e.code === 'internal' && /not a database/.test(e.message));
  });

  test('duplicates: within a call, across calls and between concurrent calls', async () => {
    await withStore({}, async (store) => {
      const t = fakeTable();
      const to = fakeRecipient();
      const [a, b, c, d] = Array.from({ length: 4 }, () => fakeEntry({ table: t, to }));
      assert.deepEqual(await store.insert([a!, b!, a!]), ['stored', 'stored', 'duplicate']);
      assert.deepEqual(await store.insert([b!, c!, c!]), ['duplicate', 'stored', 'duplicate']);

      // The same new entry in five concurrent calls: stored exactly once, by the first call.
      const calls = Array.from({ length: 5 }, () => [fakeEntry({ table: t, to }), d!, fakeEntry({ table: t, to })]);
      const outcomes = await Promise.all(calls.map((call) => store.insert(call)));
      assert.deepEqual(outcomes[0], ['stored', 'stored', 'stored']);
      for (const o of outcomes.slice(1)) assert.deepEqual(o, ['stored', 'duplicate', 'stored']);

      // A copy with the same id is a duplicate even when its other bytes differ.
      const twin: ValidEntry = { ...a!, entry: { ...a!.entry, payload: Buffer.from('other') } };
      assert.deepEqual(await store.insert([twin]), ['duplicate']);
      const [stored] = (await store.query({ ids: [a!.id], limit: 1 })).entries;
      assert.ok(stored!.entry.payload.equals(a!.entry.payload));

      assert.equal(await store.count(), 4 + 10);
      assert.deepEqual(await store.insert([]), []);
    });
  });

  test('duplicates scattered through calls larger than one statement', async () => {
    await withStore({}, async (store) => {
      const t = fakeTable();
      const recipients = [fakeRecipient(), fakeRecipient()];
      const old = Array.from({ length: 300 }, (_, i) => fakeEntry({ table: t, to: recipients[i % 2]!, payloadBytes: 16 }));
      await store.insert(old);
      // 1,100 entries (chunks of 512, 512, 64, 8, 4): every fourth is an old one.
      const mixed: ValidEntry[] = [];
      const want: string[] = [];
      for (let i = 0; i < 1100; i++) {
        const isOld = i % 4 === 0 && i / 4 < old.length;
        mixed.push(isOld ? old[i / 4]! : fakeEntry({ table: t, to: recipients[i % 2]!, payloadBytes: 16 }));
        want.push(isOld ? 'duplicate' : 'stored');
      }
      assert.deepEqual(await store.insert(mixed), want);
      assert.equal(await store.count(), 300 + 1100 - 275);
      const seqs = (await everything(store)).map((e) => e.seq);
      assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1), 'seqs stay dense');
      const stored = await collect(store, { ids: mixed.map((e) => e.id), limit: 1000 });
      assert.equal(stored.length, 1100);
    });
  });

  test('group commit: concurrent calls share a transaction, bounded by maxBatchEntries', async () => {
    // Every transaction reads the clock once; a clock that ticks on each read tells them apart.
    let tick = 1_000_000;
    await withStore({ clock: () => (tick += 1000), maxBatchEntries: 10 }, async (store) => {
      const t = fakeTable();
      const to = fakeRecipient();
      const calls = Array.from({ length: 6 }, () => Array.from({ length: 4 }, () => fakeEntry({ table: t, to })));
      await Promise.all(calls.map((call) => store.insert(call)));
      const all = await everything(store);
      const perCommit = new Map<number, number>();
      for (const e of all) perCommit.set(e.receivedAt, (perCommit.get(e.receivedAt) ?? 0) + 1);
      // 24 entries in calls of 4, at most 10 per transaction: two calls per commit.
      assert.deepEqual([...perCommit.values()], [8, 8, 8]);
      // A single call larger than the bound still commits whole.
      const big = Array.from({ length: 25 }, () => fakeEntry({ table: t, to }));
      await store.insert(big);
      const last = (await store.query({ ids: big.map((e) => e.id), limit: 100 })).entries;
      assert.equal(new Set(last.map((e) => e.receivedAt)).size, 1);
    });
  });

  test('a failed transaction rejects the calls in it and loses nothing committed', async () => {
    await withStore({}, async (store) => {
      const t = fakeTable();
      const to = fakeRecipient();
      const committed = [fakeEntry({ table: t, to }), fakeEntry({ table: t, to })];
      await store.insert(committed);
      const bad = fakeEntry({ table: t, to });
      (bad.entry as { payload: unknown }).payload = null; // violates NOT NULL inside the transaction
      const good = fakeEntry({ table: t, to });
      const newTable = fakeTable();
      const withNewTable = fakeEntry({ table: newTable, to });
      // Submitted in the same tick, so they share the failing transaction.
      const results = await Promise.allSettled([store.insert([good, withNewTable]), store.insert([bad])]);
      for (const r of results) {
        assert.equal(r.status, 'rejected');
        assert.ok(isP2pdbError(r.reason) && r.reason.code === 'internal', String(r.status === 'rejected' && r.reason));
      }
      assert.equal(await store.count(), 2);
      assert.deepEqual((await everything(store)).map((e) => hex(e.id)), committed.map((e) => hex(e.id)));
      // The table key created in the rolled-back transaction must not linger in the cache.
      assert.deepEqual(await store.insert([good, withNewTable]), ['stored', 'stored']);
      assert.equal((await store.query({ tables: [newTable.fingerprint], limit: 10 })).entries.length, 1);
      assert.deepEqual(
        (await store.countByTable()).map((c) => [hex(c.fingerprint), c.count]),
        [
          [hex(t.fingerprint), 3],
          [hex(newTable.fingerprint), 1],
        ],
      );
    });
  });

  describe('filters', () => {
    const clock = manualClock(50_000);
    let store: Store;
    let all: StoredEntry[];
    let tables: FakeTable[];
    let recipients: Buffer[];
    const fp = (e: StoredEntry, t: FakeTable) => e.entry.table.equals(t.spki);

    before(async () => {
      store = await openStore({ database: await dbLocator(), clock: clock.read });
      tables = [fakeTable(), fakeTable(), fakeTable()];
      recipients = [fakeRecipient(), fakeRecipient(), fakeRecipient(), fakeRecipient()];
      // 10 commits of 12 entries, 700 ms apart, so seconds hold one or two commits.
      for (let c = 0; c < 10; c++) {
        const batch = Array.from({ length: 12 }, (_, i) =>
          fakeEntry({ table: tables[(c + i) % 3]!, to: recipients[(c * 5 + i) % 4]!, payloadBytes: 40 }),
        );
        await store.insert(batch);
        clock.now += 700;
      }
      all = await everything(store);
      assert.equal(all.length, 120);
    });
    after(async () => {
      await store.close();
    });

    test('no filter pages through everything in seq order', async () => {
      assert.deepEqual(
        all.map((e) => e.seq),
        Array.from({ length: 120 }, (_, i) => i + 1),
      );
      for (const limit of [1, 7, 60, 119, 120, 121]) {
        assert.deepEqual((await collect(store, { limit })).map((e) => e.seq), all.map((e) => e.seq), `limit ${limit}`);
      }
      const exact = await store.query({ limit: 120 });
      assert.equal(exact.nextAfterSeq, 120, 'a full page gives a cursor even when nothing follows');
      assert.deepEqual(await store.query({ afterSeq: 120, limit: 5 }), { entries: [], nextAfterSeq: null });
    });

    test('every filter and combination matches a scan of all entries', async () => {
      const [t0, t1, t2] = tables as [FakeTable, FakeTable, FakeTable];
      const [r0, r1, r2] = recipients as [Buffer, Buffer, Buffer, Buffer];
      const someIds = [all[3]!, all[50]!, all[51]!, all[99]!, all[119]!].map((e) => e.id);
      const mid = all[60]!.receivedAt;
      const cases: { name: string; filter: Omit<EntryFilter, 'limit'>; want: (e: StoredEntry) => boolean }[] = [
        { name: 'afterSeq', filter: { afterSeq: 33 }, want: (e) => e.seq > 33 },
        { name: 'ids', filter: { ids: someIds }, want: (e) => someIds.some((id) => id.equals(e.id)) },
        { name: 'one recipient', filter: { recipients: [r1] }, want: (e) => e.entry.to.equals(r1) },
        { name: 'two recipients', filter: { recipients: [r0, r2] }, want: (e) => e.entry.to.equals(r0) || e.entry.to.equals(r2) },
        { name: 'one table', filter: { tables: [t2.fingerprint] }, want: (e) => fp(e, t2) },
        { name: 'two tables', filter: { tables: [t0.fingerprint, t1.fingerprint] }, want: (e) => fp(e, t0) || fp(e, t1) },
        { name: 'receivedSince', filter: { receivedSince: mid }, want: (e) => e.receivedAt >= mid },
        {
          name: 'tables + recipients',
          filter: { tables: [t0.fingerprint], recipients: [r1, r2] },
          want: (e) => fp(e, t0) && (e.entry.to.equals(r1) || e.entry.to.equals(r2)),
        },
        {
          name: 'tables + receivedSince + afterSeq',
          filter: { tables: [t1.fingerprint, t2.fingerprint], receivedSince: mid, afterSeq: 80 },
          want: (e) => (fp(e, t1) || fp(e, t2)) && e.receivedAt >= mid && e.seq > 80,
        },
        {
          name: 'recipients + receivedSince',
          filter: { recipients: [r0], receivedSince: mid + 1 },
          want: (e) => e.entry.to.equals(r0) && e.receivedAt >= mid + 1,
        },
        {
          name: 'ids + tables + recipients',
          filter: { ids: someIds, tables: [t0.fingerprint, t1.fingerprint], recipients: [r0, r1, r2] },
          want: (e) =>
            someIds.some((id) => id.equals(e.id)) && (fp(e, t0) || fp(e, t1)) && [r0, r1, r2].some((r) => r.equals(e.entry.to)),
        },
        { name: 'ids + afterSeq', filter: { ids: someIds, afterSeq: 51 }, want: (e) => someIds.some((id) => id.equals(e.id)) && e.seq > 51 },
        { name: 'ids + receivedSince', filter: { ids: someIds, receivedSince: mid }, want: (e) => someIds.some((id) => id.equals(e.id)) && e.receivedAt >= mid },
        { name: 'repeated values', filter: { recipients: [r1, r1], tables: [t2.fingerprint, t2.fingerprint] }, want: (e) => e.entry.to.equals(r1) && fp(e, t2) },
      ];
      for (const c of cases) {
        const want = all.filter(c.want).map((e) => e.seq);
        assert.ok(want.length > 0 || c.name === 'ids + tables + recipients', `${c.name}: the case should select something`);
        for (const limit of [1, 4, 1000]) {
          const got = await collect(store, { ...c.filter, limit });
          assert.deepEqual(got.map((e) => e.seq), want, `${c.name}, limit ${limit}`);
        }
      }
    });

    test('receivedSince is exact at every millisecond boundary', async () => {
      const times = [...new Set(all.map((e) => e.receivedAt))];
      assert.equal(times.length, 10);
      const probes = [0, times[0]! - 1, clock.now + 10_000];
      for (const t of times) probes.push(t - 1, t, t + 1, Math.floor(t / 1000) * 1000, Math.ceil(t / 1000) * 1000, t + 0.5);
      for (const since of probes) {
        const want = all.filter((e) => e.receivedAt >= since).map((e) => e.seq);
        const got = await collect(store, { receivedSince: since, limit: 50 });
        assert.deepEqual(got.map((e) => e.seq), want, `receivedSince ${since}`);
      }
    });

    test('unknown tables and empty lists match nothing', async () => {
      const unknown = fakeTable().fingerprint;
      assert.deepEqual(await store.query({ tables: [unknown], limit: 10 }), { entries: [], nextAfterSeq: null });
      const known = tables[0]!;
      const mixed = await collect(store, { tables: [unknown, known.fingerprint], limit: 1000 });
      assert.deepEqual(mixed.map((e) => e.seq), all.filter((e) => fp(e, known)).map((e) => e.seq));
      for (const filter of [{ tables: [] }, { recipients: [] }, { ids: [] }]) {
        assert.deepEqual(await store.query({ ...filter, limit: 10 }), { entries: [], nextAfterSeq: null });
      }
      assert.equal((await store.query({ recipients: [fakeRecipient()], limit: 10 })).entries.length, 0);
      assert.equal((await store.query({ ids: [fakeRecipient()], limit: 10 })).entries.length, 0);
    });

    test('bad limits and cursors are refused with a code', async () => {
      for (const filter of [{ limit: 0 }, { limit: 1.5 }, { limit: 10, afterSeq: -1 }, { limit: 10, receivedSince: Number.NaN }]) {
        await assert.rejects(store.query(filter), (e) => isP2pdbError(e) && e.code === 'bad_request');
      }
    });

    test('no filter scans the entries table (EXPLAIN QUERY PLAN)', { skip: sqliteOnly }, async () => {
      const [t0, t1] = tables as [FakeTable, FakeTable];
      const ids = [all[0]!.id, all[1]!.id];
      const cases: [string, Omit<EntryFilter, 'limit'>, RegExp][] = [
        ['none', {}, /SEARCH entries USING INTEGER PRIMARY KEY \(rowid>\?\)/],
        ['afterSeq', { afterSeq: 5 }, /SEARCH entries USING INTEGER PRIMARY KEY \(rowid>\?\)/],
        ['ids', { ids }, /SEARCH entries USING INDEX entries_id \(id=\? AND rowid>\?\)/],
        ['recipients', { recipients: [recipients[0]!, recipients[1]!] }, /SEARCH entries USING INDEX entries_recipient \(recipient=\? AND rowid>\?\)/],
        ['tables', { tables: [t0.fingerprint, t1.fingerprint] }, /SEARCH entries USING INDEX entries_table \(table_id=\? AND rowid>\?\)/],
        ['receivedSince', { receivedSince: 1 }, /SEARCH entries USING INTEGER PRIMARY KEY \(rowid>\?\)/],
        ['tables + recipients + receivedSince', { tables: [t0.fingerprint], recipients: [recipients[0]!], receivedSince: 1 }, /entries_recipient/],
        ['ids + tables', { ids, tables: [t0.fingerprint] }, /entries_id/],
        ['unknown table', { tables: [fakeTable().fingerprint] }, /entries_table/],
      ];
      for (const [name, filter, expected] of cases) {
        const plan = await store.explain({ ...filter, limit: 100 });
        const text = plan.join('\n');
        assert.match(text, expected, `${name}:\n${text}`);
        for (const line of plan) {
          assert.doesNotMatch(line, /^SCAN (entries|received_seconds|table_keys)\b/, `${name} scans:\n${text}`);
        }
      }
      const since = await store.explain({ receivedSince: 1, limit: 1 });
      assert.match(since.join('\n'), /SEARCH received_seconds USING INTEGER PRIMARY KEY \(rowid>\?\)/);
    });
  });

  test('received_at never decreases with seq, even when the clock steps back', async () => {
    const clock = manualClock(10_000);
    await withStore({ clock: clock.read }, async (store) => {
      const t = fakeTable();
      const to = fakeRecipient();
      for (const now of [10_000, 12_500, 9_000, 12_499, 30_000]) {
        clock.now = now;
        await store.insert([fakeEntry({ table: t, to })]);
      }
      const got = (await everything(store)).map((e) => e.receivedAt);
      assert.deepEqual(got, [10_000, 12_500, 12_500, 12_500, 30_000]);
      const since = await store.query({ receivedSince: 12_500, limit: 10 });
      assert.deepEqual(since.entries.map((e) => e.seq), [2, 3, 4, 5]);
    });
  });

  test('reopening keeps entries, counts and keys, and seq continues', async () => {
    const database = await dbLocator();
    const t = fakeTable();
    const to = fakeRecipient();
    const first = Array.from({ length: 5 }, () => fakeEntry({ table: t, to }));
    await withStore({ database, clock: () => 5_000 }, async (store) => {
      assert.deepEqual(await store.insert(first), Array(5).fill('stored'));
    });
    // An earlier clock on reopen: received_at still does not go back.
    await withStore({ database, clock: () => 1_000 }, async (store) => {
      assert.equal(await store.count(), 5);
      assert.deepEqual(await store.insert([first[0]!]), ['duplicate']);
      const more = fakeEntry({ table: t, to });
      assert.deepEqual(await store.insert([more]), ['stored']);
      const all = await everything(store);
      assert.deepEqual(all.map((e) => e.seq), [1, 2, 3, 4, 5, 6]);
      assert.equal(all[5]!.receivedAt, 5_000);
      assert.ok(all[5]!.entry.table.equals(t.spki));
      assert.equal((await store.query({ tables: [t.fingerprint], limit: 10 })).entries.length, 6);
      assert.deepEqual(await store.countByTable(), [{ fingerprint: t.fingerprint, count: 6 }]);
    });
  });

  test('counts are kept per table and in total', async () => {
    await withStore({}, async (store) => {
      assert.equal(await store.count(), 0);
      assert.deepEqual(await store.countByTable(), []);
      const tables = [fakeTable(), fakeTable(), fakeTable()];
      const to = fakeRecipient();
      const entries = Array.from({ length: 30 }, (_, i) => fakeEntry({ table: tables[i % 3 === 2 ? 1 : i % 3]!, to }));
      await Promise.all([store.insert(entries.slice(0, 10)), store.insert(entries.slice(5, 20)), store.insert(entries.slice(20))]);
      assert.equal(await store.count(), 30);
      const byTable = await store.countByTable();
      assert.deepEqual(
        byTable.map((c) => [hex(c.fingerprint), c.count]),
        [
          [hex(tables[0]!.fingerprint), 10],
          [hex(tables[1]!.fingerprint), 20],
        ],
      );
    });
  });

  test('insert after close is refused; close waits for queued inserts', async () => {
    const database = await dbLocator();
    const store = await openStore({ database });
    const t = fakeTable();
    const to = fakeRecipient();
    const pending = store.insert([fakeEntry({ table: t, to })]);
    const closed = store.close();
    assert.deepEqual(await pending, ['stored']);
    await closed;
    await assert.rejects(store.insert([fakeEntry({ table: t, to })]), (e) => isP2pdbError(e) && e.code === 'internal');
    await withStore({ database }, async (s) => assert.equal(await s.count(), 1));
  });

  test('acknowledged entries survive SIGKILL of the writing process', async () => {
    const database = await dbLocator();
    const child = spawn(
      process.execPath,
      [fileURLToPath(new URL('./helpers/store-crash-child.js', import.meta.url)), JSON.stringify(database)],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const acked: string[] = [];
    let buffered = '';
    let lines = 0;
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    child.stdout.on('data', (d: Buffer) => {
      buffered += d.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        acked.push(...(JSON.parse(line) as { ids: string[] }).ids);
        // Kill as soon as several acknowledgements are in: the child is mid-commit by then.
        if (++lines === 6) child.kill('SIGKILL');
      }
    });
    const signal = await exited;
    assert.equal(signal, 'SIGKILL', `child ended on its own: ${stderr}`);
    assert.ok(acked.length >= 300);

    await withStore({ database }, async (store) => {
      const ids = acked.map((h) => Buffer.from(h, 'hex'));
      const found = await collect(store, { ids, limit: 1000 });
      assert.equal(found.length, ids.length, 'every acknowledged entry is there');
      const count = await store.count();
      assert.ok(count >= ids.length, `count ${count} covers the acknowledged ${ids.length}`);
      assert.equal((await everything(store)).length, count, 'the counter agrees with the rows');
    });
    if (database.kind !== 'sqlite') return;
    // The file itself is sound after recovery.
    const db = new sqlite3.Database(database.filename);
    const check = await new Promise<string>((resolve, reject) =>
      db.get<{ integrity_check: string }>('PRAGMA integrity_check', (err, row) => (err ? reject(err) : resolve(row.integrity_check))),
    );
    await new Promise((resolve) => db.close(resolve));
    assert.equal(check, 'ok');
  });
});

describe(onBackend('onStored'), () => {
  test('reports each newly stored entry once, with the seq /get/ shows, before insert() resolves', async () => {
    await withStore({}, async (store) => {
      const table = fakeTable();
      const to = fakeRecipient();
      const seen: { seq: number; id: string }[] = [];
      let seenAtResolve = -1;
      const off = store.onStored((stored) => {
        for (const s of stored) seen.push({ seq: s.seq, id: s.entry.id.toString('hex') });
      });
      const a = fakeEntry({ table, to });
      const b = fakeEntry({ table, to });
      const c = fakeEntry({ table, to });
      await store.insert([a, b]);
      // A duplicate among new ones: only the new ones are reported (the partial-insert path).
      const pending = store.insert([b, c, a]).then((o) => {
        seenAtResolve = seen.length;
        return o;
      });
      assert.deepEqual(await pending, ['duplicate', 'stored', 'duplicate']);
      assert.equal(seenAtResolve, 3);
      const stored = await everything(store);
      assert.deepEqual(
        seen,
        stored.map((s) => ({ seq: s.seq, id: s.id.toString('hex') })),
      );
      assert.equal(await store.lastSeq(), stored[2]!.seq);
      off();
      await store.insert([fakeEntry({ table, to })]);
      assert.equal(seen.length, 3);
    });
  });

  test('a throwing listener does not fail the commit', async () => {
    await withStore({}, async (store) => {
      store.onStored(() => {
        throw new Error('listener bug');
      });
      const e = fakeEntry({ table: fakeTable(), to: fakeRecipient() });
      assert.deepEqual(await store.insert([e]), ['stored']);
      assert.equal(await store.count(), 1);
    });
  });
});
