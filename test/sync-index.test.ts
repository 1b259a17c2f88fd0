/**
 * The SyncIndex over real SQLite stores in temp dirs: roots against a from-scratch
 * recomputation, deep nodes (read through src/store/id-ranges.ts) against the in-memory model,
 * snapshots (round trip, stale, corrupt, foreign), inserts racing the startup, and two real
 * stores reconciled to equality.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ValidEntry } from '../src/entry/validate.js';
import { openStore } from '../src/store/open.js';
import type { Store } from '../src/store/types.js';
import { freshDatabase, onBackend } from './helpers/backend.js';
import { fingerprintOfIds } from '../src/sync/fingerprint.js';
import { MemoryIds } from '../src/sync/memory-ids.js';
import { idHasPrefix, prefixOf, prefixRange } from '../src/sync/prefix.js';
import { answerSync, Reconciliation } from '../src/sync/reconcile.js';
import { SNAPSHOT_FILE, SyncIndex } from '../src/sync/sync-index.js';
import type { SyncView } from '../src/sync/view.js';
import { waitFor } from '../src/tor/wait.js';
import { createLogger } from '../src/util/log.js';
import { fakeEntry, fakeRecipient, fakeTable, tempDir, type FakeTable } from './helpers/store-fixtures.js';

let root: { dir: string; remove: () => Promise<void> };
let n = 0;
before(async () => {
  root = await tempDir('sync-index-test');
});
// Whatever a failing test left open is closed here, so a failure fails instead of hanging.
const openIndexes: SyncIndex[] = [];
const openStores: Store[] = [];
after(async () => {
  for (const i of openIndexes) await i.close().catch(() => {});
  for (const s of openStores) await s.close().catch(() => {});
  await root.remove();
});

async function openIndex(opts: Parameters<typeof SyncIndex.open>[0]): Promise<SyncIndex> {
  const index = await SyncIndex.open(opts);
  openIndexes.push(index);
  return index;
}

interface Node {
  dir: string;
  store: Store;
}

async function newNode(): Promise<Node> {
  const dir = path.join(root.dir, `node-${++n}`);
  const store = await openStore({ database: await freshDatabase(dir), durability: 'normal' });
  openStores.push(store);
  return { dir, store };
}

function entries(table: FakeTable, count: number): ValidEntry[] {
  const to = fakeRecipient();
  return Array.from({ length: count }, () => fakeEntry({ table, to, payloadBytes: 64, signatureBytes: 64 }));
}

async function insertAll(store: Store, list: ValidEntry[]): Promise<void> {
  for (let i = 0; i < list.length; i += 500) await store.insert(list.slice(i, i + 500));
}

/** Per table hex → ids, what the index must agree with. */
function model(list: ValidEntry[]): Map<string, Buffer[]> {
  const m = new Map<string, Buffer[]>();
  for (const e of list) {
    const k = e.tableFingerprint.toString('hex');
    m.set(k, [...(m.get(k) ?? []), e.id]);
  }
  return m;
}

function checkRoots(index: SyncIndex, list: ValidEntry[]): void {
  const expected = [...model(list)].map(([t, ids]) => [t, ids.length, fingerprintOfIds(ids).toString('hex')]).sort();
  const got = index
    .tables()
    .map((r) => [r.table.toString('hex'), r.count, r.fingerprint.toString('hex')])
    .sort();
  assert.deepEqual(got, expected);
}

function capture() {
  const lines: Record<string, unknown>[] = [];
  return { lines, log: createLogger((l) => lines.push(JSON.parse(l) as Record<string, unknown>), 'debug') };
}

function readySource(lines: Record<string, unknown>[]): unknown {
  return lines.filter((l) => l.msg === 'sync index ready').at(-1)?.source;
}

describe(onBackend('SyncIndex over a real store'), () => {
  test('roots equal a from-scratch recomputation as entries arrive', async () => {
    const node = await newNode();
    const index = await openIndex({ store: node.store, dataDir: node.dir });
    const tables = [fakeTable(), fakeTable(), fakeTable()];
    const all: ValidEntry[] = [];
    for (const [i, t] of tables.entries()) {
      const batch = entries(t, [2500, 40, 1][i]!);
      await insertAll(node.store, batch);
      all.push(...batch);
      checkRoots(index, all);
    }
    await node.store.insert(all.slice(0, 10)); // duplicates are not stored, so not counted
    checkRoots(index, all);
    await index.close();
    await node.store.close();
  });

  test('nodes of every depth agree with the in-memory model and a brute-force count', async () => {
    const node = await newNode();
    const big = fakeTable();
    const small = fakeTable();
    const list = [...entries(big, 6000), ...entries(small, 20)];
    // Another table's ids share every id range: range reads must filter by table.
    await insertAll(node.store, list);
    const index = await openIndex({ store: node.store, dataDir: node.dir });
    const mem = new MemoryIds();
    for (const e of list) mem.add(e.tableFingerprint, e.id);
    const views: [string, SyncView][] = [
      ['sqlite', index.view],
      ['memory', mem.view()],
    ];
    const m = model(list);
    for (const t of [big, small]) {
      const ids = m.get(t.fingerprint.toString('hex'))!;
      const prefixes = new Set<string>(['', 'f', '0a', 'ffff', '00000']);
      for (const id of ids.slice(0, 30)) for (const d of [1, 3, 4, 5, 6, 9, 64]) prefixes.add(prefixOf(id, d));
      for (const p of prefixes) {
        const inNode = ids.filter((id) => idHasPrefix(id, p)).sort(Buffer.compare);
        for (const [name, view] of views) {
          const at = `${name} ${p || "''"}`;
          const node_ = await view.node(t.fingerprint, p);
          assert.equal(node_.count, inNode.length, `${at}: count`);
          assert.ok(node_.fingerprint.equals(fingerprintOfIds(inNode)), `${at}: fingerprint`);
          assert.deepEqual(await view.ids(t.fingerprint, p, 100), inNode.slice(0, 100), `${at}: ids`);
          if (p.length < 64) {
            const kids = await view.children(t.fingerprint, p);
            for (let i = 0; i < 16; i++) {
              const kid = inNode.filter((id) => idHasPrefix(id, p + i.toString(16)));
              assert.equal(kids[i]!.count, kid.length, `${at}: child ${i}`);
              assert.ok(kids[i]!.fingerprint.equals(fingerprintOfIds(kid)), `${at}: child ${i} fingerprint`);
            }
          }
        }
      }
    }
    // Both query plans give the same ids.
    const ranges = node.store.idIndex;
    for (const p of ['', '3', '3a', '3a7']) {
      const { lo, hi } = prefixRange(p);
      const byId = await ranges.idsInRange(big.fingerprint, lo, hi, { plan: 'by-id' });
      const byTable = await ranges.idsInRange(big.fingerprint, lo, hi, { plan: 'by-table' });
      assert.deepEqual(byId, byTable);
      const paged = [
        ...(await ranges.idsInRange(big.fingerprint, lo, hi, { limit: 7 })),
      ];
      while (paged.length < byId.length) paged.push(...(await ranges.idsInRange(big.fingerprint, lo, hi, { limit: 7, afterId: paged.at(-1)! })));
      assert.deepEqual(paged, byId, 'a cursor pages through a range without loss or repeats');
    }
    await index.close();
    await node.store.close();
  });

  test('snapshot: round trip, stale snapshot catches up, corrupt or foreign snapshot rebuilds', async () => {
    const node = await newNode();
    const t = fakeTable();
    const first = entries(t, 3000);
    await insertAll(node.store, first);
    const c1 = capture();
    let index = await openIndex({ store: node.store, dataDir: node.dir, log: c1.log });
    assert.equal(readySource(c1.lines), 'rebuild');
    await index.close();

    // Round trip.
    const c2 = capture();
    index = await openIndex({ store: node.store, dataDir: node.dir, log: c2.log });
    assert.equal(readySource(c2.lines), 'snapshot');
    checkRoots(index, first);
    await index.close();

    // Stale: entries written while no index ran.
    const more = [...entries(t, 700), ...entries(fakeTable(), 50)];
    await insertAll(node.store, more);
    const c3 = capture();
    index = await openIndex({ store: node.store, dataDir: node.dir, log: c3.log });
    assert.equal(readySource(c3.lines), 'snapshot');
    checkRoots(index, [...first, ...more]);
    await index.close();

    // Corrupt: one flipped byte fails the checksum.
    const file = path.join(node.dir, SNAPSHOT_FILE);
    const bytes = await readFile(file);
    bytes[100] = bytes[100]! ^ 0xff;
    await writeFile(file, bytes);
    const c4 = capture();
    index = await openIndex({ store: node.store, dataDir: node.dir, log: c4.log });
    assert.equal(readySource(c4.lines), 'rebuild');
    assert.ok(c4.lines.some((l) => l.msg === 'sync index snapshot unusable, rebuilding'));
    checkRoots(index, [...first, ...more]);
    await index.close();

    // Foreign: a valid snapshot of another store.
    const other = await newNode();
    await insertAll(other.store, entries(t, 10));
    const c5 = capture();
    await writeFile(path.join(other.dir, SNAPSHOT_FILE), await readFile(file));
    index = await openIndex({ store: other.store, dataDir: other.dir, log: c5.log });
    assert.ok(c5.lines.some((l) => l.msg === 'sync index snapshot disagrees with the store, rebuilding'));
    assert.equal(index.root(t.fingerprint).count, 10);
    await index.close();
    await other.store.close();
    await node.store.close();
  });

  test('inserts racing the startup are counted exactly once', async () => {
    const node = await newNode();
    const t = fakeTable();
    const before_ = entries(t, 4000);
    await insertAll(node.store, before_);
    // A writer that keeps committing while the index loads, and a few batches after it is live:
    // notices arrive during the scan (buffered) and after it (applied directly).
    const during: ValidEntry[] = [];
    let opened = false;
    const writing = (async () => {
      for (let after_ = 0; after_ < 3; ) {
        const batch = entries(t, 200);
        await node.store.insert(batch);
        during.push(...batch);
        if (opened) after_++;
      }
    })();
    // And one commit certainly lands between the subscription and the scan: the scan sees its
    // rows and its notice is buffered, so applying it again would count it twice.
    const index = await openIndex({
      store: node.store,
      dataDir: node.dir,
      beforeCatchUp: async () => {
        const batch = entries(t, 100);
        await node.store.insert(batch);
        during.push(...batch);
      },
    }).finally(() => {
      opened = true;
    });
    try {
      await writing;
      assert.ok(during.length >= 700);
      checkRoots(index, [...before_, ...during]);
    } finally {
      await index.close();
      await node.store.close();
    }
  });

  test('periodic snapshots are written while entries arrive', async () => {
    const node = await newNode();
    const index = await openIndex({ store: node.store, dataDir: node.dir, snapshotEvery: 1000 });
    const t = fakeTable();
    const list = entries(t, 2500);
    await insertAll(node.store, list);
    const file = path.join(node.dir, SNAPSHOT_FILE);
    await waitFor(async () => (await readFile(file).catch(() => null))?.length ?? 0, { timeoutMs: 10_000, what: 'a snapshot' });
    await index.close();
    await node.store.close();
  });
});

describe(onBackend('two real stores reconcile to equality'), () => {
  test('need, give and ranges, then transfer: roots become equal', async () => {
    const a = await newNode();
    const b = await newNode();
    const shared = fakeTable();
    const onlyB = fakeTable();
    const both = entries(shared, 3000);
    const aOnly = entries(shared, 25);
    const bOnly = [...entries(shared, 40), ...entries(onlyB, 300)];
    await insertAll(a.store, [...both, ...aOnly]);
    await insertAll(b.store, [...both, ...bOnly]);
    const ia = await openIndex({ store: a.store, dataDir: a.dir });
    const ib = await openIndex({ store: b.store, dataDir: b.dir });
    const everything = { mirrors: () => true };
    const rec = new Reconciliation(ia.view, { tables: [shared.fingerprint], allTables: true, scope: everything });
    let msg: Uint8Array | null = await rec.first();
    while (msg) msg = await rec.next(await answerSync(ib.view, msg, everything));
    assert.ok(rec.stats.roundTrips <= 4, `${rec.stats.roundTrips} round trips`);

    const byId = new Map([...both, ...aOnly, ...bOnly].map((e) => [e.id.toString('hex'), e]));
    const expand = async (store: Store, ranges: typeof rec.needRanges) => {
      const out: Buffer[] = [];
      const idr = store.idIndex;
      for (const r of ranges) {
        const { lo, hi } = prefixRange(r.prefix);
        const ids = await idr.idsInRange(r.table, lo, hi);
        assert.equal(ids.length, r.count);
        out.push(...ids);
      }
      return out;
    };
    const toA = [...rec.need, ...(await expand(b.store, rec.needRanges))];
    const toB = [...rec.give, ...(await expand(a.store, rec.giveRanges))];
    assert.equal(toA.length, bOnly.length);
    assert.equal(toB.length, aOnly.length);
    await insertAll(a.store, toA.map((id) => byId.get(id.toString('hex'))!));
    await insertAll(b.store, toB.map((id) => byId.get(id.toString('hex'))!));
    const roots = (i: SyncIndex) => i.tables().map((r) => `${r.table.toString('hex')} ${r.count} ${r.fingerprint.toString('hex')}`).sort();
    assert.deepEqual(roots(ia), roots(ib));

    // And now they agree in one round trip.
    const again = new Reconciliation(ia.view, { tables: [shared.fingerprint, onlyB.fingerprint], allTables: true, scope: everything });
    msg = await again.first();
    while (msg) msg = await again.next(await answerSync(ib.view, msg, everything));
    assert.equal(again.stats.roundTrips, 1);
    assert.equal(again.need.length + again.give.length + again.needRanges.length + again.giveRanges.length, 0);
    for (const [i, s] of [[ia, a.store], [ib, b.store]] as const) {
      await i.close();
      await s.close();
    }
  });
});
