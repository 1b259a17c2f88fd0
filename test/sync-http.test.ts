/**
 * The sync transport over loopback: the routes' answers to good and bad input (4xx with stable
 * codes, nothing stored, the node keeps working), and a whole session (reconcile, fetch, range
 * pages, push, resume from a saved cursor) between a real node and real local parts. The Tor
 * path is in sync-network.test.ts; here the bytes go over plain loopback HTTP (test requester).
 */
import assert from 'node:assert/strict';
import nodeCrypto, { randomBytes } from 'node:crypto';
import { syncBuiltinESMExports } from 'node:module';
import { rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { configFromEnv, resolveConfig } from '../src/config/config.js';
import { parsePublicKey } from '../src/crypto/keys.js';
import type { P2pdbError } from '../src/errors.js';
import { newIdentity } from '../src/identity/onion-key.js';
import { Ingestor } from '../src/ingest/ingest.js';
import { startControlListener } from '../src/node/control.js';
import { startNode, type RunningNode } from '../src/node/node.js';
import { prefixBounds } from '../src/store/range-queries.js';
import type { PeerTable } from '../src/store/peer-table.js';
import { openStore } from '../src/store/open.js';
import type { Store } from '../src/store/types.js';
import { freshDatabase, onBackend } from './helpers/backend.js';
import { Reconciliation } from '../src/sync/reconcile.js';
import { RequestGate } from '../src/http/routes/sync.js';
import { RefusedIds } from '../src/sync/refused-ids.js';
import { OriginLog } from '../src/sync/origins.js';
import { offenceOf, penaltyPoints } from '../src/sync/penalties.js';
import { claims, sharedTables } from '../src/sync/shared-tables.js';
import { startFreshPush, type FreshPush } from '../src/sync/push.js';
import { startSyncScheduler, type SyncScheduler } from '../src/sync/scheduler.js';
import { SyncService, type SyncOutcome, type SyncServiceDeps } from '../src/sync/service.js';
import { waitFor } from '../src/tor/wait.js';
import { silentLogger } from '../src/util/log.js';
import { CLI_MAIN, closedPort, runScript } from './helpers/cli.js';
import { runSyncSession, type SessionDeps, type SyncReport } from '../src/sync/session.js';
import { SNAPSHOT_FILE, SyncIndex } from '../src/sync/sync-index.js';
import { encodeRequest } from '../src/sync/codec.js';
import { entryToJson } from '../src/entry/wire.js';
import { httpSyncTransport } from '../src/sync/transport.js';
import { testKey, type MadeEntry } from './helpers/entries.js';
import { startTestNode } from './helpers/node.js';
import { allIds, loopbackRequester, makeEntries, putAll, sortedHex } from './helpers/sync.js';
import { tempDir } from './helpers/tmp.js';

const tableKey = testKey();
const otherTableKey = testKey();
const alice = testKey();
const tableFp = parsePublicKey(tableKey.publicPem).fingerprint;
const otherFp = parsePublicKey(otherTableKey.publicPem).fingerprint;

let remote: RunningNode;
let whitelist: RunningNode;
let remoteEntries: MadeEntry[];
let localOnly: MadeEntry[];

before(async () => {
  remote = await startTestNode();
  whitelist = await startTestNode({ allowedTables: [tableFp.toString('hex')] });
  remoteEntries = await makeEntries(30, tableKey, alice, 'remote');
  localOnly = await makeEntries(5, tableKey, alice, 'local');
  const put = await putAll(remote.url, remoteEntries);
  assert.equal(put.stored, 30);
});

after(async () => {
  await remote?.close();
  await whitelist?.close();
});

async function call(method: string, urlPath: string, body?: string | Buffer, contentType?: string): Promise<{ status: number; headers: Headers; text: string; json: any }> {
  const res = await fetch(`${remote.url}${urlPath}`, {
    method,
    ...(body !== undefined ? { body, headers: { 'content-type': contentType ?? 'application/octet-stream' } } : {}),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

function lines(text: string): { id: string; table: string }[] {
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { id: string; table: string });
}

test(onBackend('POST /sync/ refuses bad messages with stable codes and stores nothing'), async () => {
  const before = await remote.store.count();
  const wrongType = await call('POST', '/sync/', '{}', 'application/json');
  assert.equal(wrongType.status, 415);
  assert.equal(wrongType.json.error.code, 'unsupported_media_type');
  for (const garbage of [Buffer.alloc(0), Buffer.from([0xff, 0, 1, 2, 3]), Buffer.from([1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f])]) {
    const r = await call('POST', '/sync/', garbage);
    assert.equal(r.status, 400, `garbage ${garbage.toString('hex')}: ${r.text}`);
    assert.equal(r.json.error.code, 'sync_malformed');
  }
  const huge = await call('POST', '/sync/', Buffer.alloc(1024 * 1024 + 1, 1));
  assert.equal(huge.status, 413);
  assert.equal(huge.json.error.code, 'payload_too_large');
  assert.equal(await remote.store.count(), before);
});

test(onBackend('POST /sync/fetch returns the entries that exist and refuses bad bodies'), async () => {
  const wanted = [remoteEntries[0]!.idHex, remoteEntries[7]!.idHex, 'ab'.repeat(32)];
  const ok = await call('POST', '/sync/fetch', JSON.stringify({ ids: wanted }), 'application/json');
  assert.equal(ok.status, 200);
  assert.match(ok.headers.get('content-type') ?? '', /application\/x-ndjson/);
  assert.deepEqual(sortedHex(lines(ok.text).map((l) => l.id)), sortedHex([remoteEntries[0]!.idHex, remoteEntries[7]!.idHex]));

  const cases: [string | Buffer, string, number, string][] = [
    ['not json', 'application/json', 400, 'malformed'],
    [JSON.stringify({ ids: 'x' }), 'application/json', 400, 'malformed'],
    [JSON.stringify({ ids: ['zz'] }), 'application/json', 400, 'malformed'],
    [JSON.stringify({ ids: [] }), 'application/x-ndjson', 415, 'unsupported_media_type'],
    [JSON.stringify({ ids: new Array(2001).fill('ab'.repeat(32)) }), 'application/json', 413, 'batch_too_large'],
    [Buffer.alloc(200 * 1024, 0x20), 'application/json', 413, 'payload_too_large'],
  ];
  for (const [body, type, status, code] of cases) {
    const r = await call('POST', '/sync/fetch', body, type);
    assert.equal(r.status, status, `${String(body).slice(0, 40)}: ${r.text.slice(0, 200)}`);
    assert.equal(r.json.error.code, code);
  }
});

test(onBackend('GET /sync/range pages a whole table by cursor, and an id prefix by id'), async () => {
  const seen: string[] = [];
  let after: string | null = null;
  let pages = 0;
  for (;;) {
    const q = new URLSearchParams({ table: tableFp.toString('hex'), limit: '7' });
    if (after) q.set('after', after);
    const r = await call('GET', `/sync/range?${q.toString()}`);
    assert.equal(r.status, 200, r.text);
    const page = lines(r.text);
    assert.ok(page.length <= 7);
    seen.push(...page.map((l) => l.id));
    pages++;
    after = r.headers.get('x-p2pdb-next');
    if (!after) break;
    assert.ok(pages < 10, 'the cursor advances');
  }
  assert.equal(pages, 5, '30 entries in pages of 7');
  assert.deepEqual(sortedHex(seen), sortedHex(remoteEntries.map((e) => e.idHex)));
  assert.equal(new Set(seen).size, seen.length, 'no entry twice');

  // Every prefix of one nibble, in pages of 2: together exactly the table, each under its prefix.
  const byPrefix: string[] = [];
  for (const nibble of '0123456789abcdef') {
    let cursor: string | null = null;
    do {
      const q = new URLSearchParams({ table: tableFp.toString('hex'), prefix: nibble, limit: '2' });
      if (cursor) q.set('after', cursor);
      const r = await call('GET', `/sync/range?${q.toString()}`);
      assert.equal(r.status, 200, r.text);
      for (const l of lines(r.text)) {
        assert.ok(l.id.startsWith(nibble));
        byPrefix.push(l.id);
      }
      cursor = r.headers.get('x-p2pdb-next');
    } while (cursor);
  }
  assert.deepEqual(byPrefix.sort(), sortedHex(remoteEntries.map((e) => e.idHex)));

  const empty = await call('GET', `/sync/range?table=${otherFp.toString('hex')}`);
  assert.equal(empty.status, 200, 'a mirrored table this node holds nothing of: an empty page');
  assert.equal(empty.text, '');
  assert.equal(empty.headers.get('x-p2pdb-next'), null);
});

test(onBackend('GET /sync/range refuses bad tables, prefixes, cursors and limits'), async () => {
  const t = tableFp.toString('hex');
  const cases: [string, number, string][] = [
    ['', 400, 'malformed'],
    [`table=${t.slice(2)}`, 400, 'malformed'],
    [`table=${t}&table=${t}`, 400, 'bad_request'],
    [`table=${t}&prefix=xyz`, 400, 'bad_request'],
    [`table=${t}&prefix=${'a'.repeat(65)}`, 400, 'bad_request'],
    [`table=${t}&after=12`, 400, 'bad_request'],
    [`table=${t}&after=s-1`, 400, 'bad_request'],
    [`table=${t}&prefix=a&after=s12`, 400, 'bad_request'],
    [`table=${t}&prefix=a&after=i${'z'.repeat(64)}`, 400, 'bad_request'],
    [`table=${t}&limit=0`, 400, 'bad_request'],
    [`table=${t}&limit=100000`, 400, 'bad_request'],
    [`table=${t}&limit=ten`, 400, 'bad_request'],
  ];
  for (const [query, status, code] of cases) {
    const r = await call('GET', `/sync/range?${query}`);
    assert.equal(r.status, status, `${query}: ${r.text.slice(0, 200)}`);
    assert.equal(r.json.error.code, code, query);
  }
  const refused = await fetch(`${whitelist.url}/sync/range?table=${otherFp.toString('hex')}`);
  assert.equal(refused.status, 403, 'a table the node does not mirror');
  assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'table_not_allowed');
  assert.equal((await fetch(`${remote.url}/hello/`)).status, 200, 'the node keeps working');
});

test(onBackend('GET /index/ lists per-table counts and fingerprint roots of mirrored tables only'), async () => {
  const r = await call('GET', '/index/');
  assert.equal(r.status, 200);
  assert.equal(r.json.protocol, 'p2pdb/1');
  assert.deepEqual(
    r.json.tables.map((t: { table: string; count: number }) => [t.table, t.count]),
    [[tableFp.toString('hex'), 30]],
  );
  assert.match(r.json.tables[0].fingerprint, /^[0-9a-f]{32}$/);
  const w = (await (await fetch(`${whitelist.url}/index/`)).json()) as { tables: unknown[] };
  assert.deepEqual(w.tables, []);
});

test(onBackend('prefix bounds cover exactly the ids under a prefix'), () => {
  assert.deepEqual(prefixBounds(''), { lo: Buffer.alloc(32), hi: null });
  assert.equal(prefixBounds('a').hi!.toString('hex'), 'b'.padEnd(64, '0'));
  assert.equal(prefixBounds('0f').hi!.toString('hex'), '1'.padEnd(64, '0'));
  assert.equal(prefixBounds('fff').hi, null);
  assert.equal(prefixBounds('3ff').hi!.toString('hex'), '4'.padEnd(64, '0'));
});

/** This process's own node parts (as node.ts assembles them), to run sessions against `remote`. */
interface LocalSide {
  dir: string;
  store: Store;
  ingestor: Ingestor;
  index: SyncIndex;
  peers: PeerTable;
  close(): Promise<void>;
}

async function localSide(powBits = 12): Promise<LocalSide> {
  const dir = tempDir('p2pdb-sync-local-');
  const store = await openStore({ database: await freshDatabase(dir), durability: 'normal' });
  const ingestor = new Ingestor({ store, policy: { allowedTables: '*', powBits, maxPayloadBytes: 64 * 1024, maxFutureSkewMs: 300_000 } });
  const index = await SyncIndex.open({ store, dataDir: dir });
  const peers = store.peers();
  return {
    dir,
    store,
    ingestor,
    index,
    peers,
    async close() {
      await ingestor.close();
      await index.close();
      await store.close();
    },
  };
}

/** A peer this side has verified (an operator's peer that said hello), mirroring `tables`. */
async function verifiedPeer(local: LocalSide, tables: '*' | string[] = '*', onion = newIdentity().address): Promise<string> {
  const now = Date.now();
  await local.peers.add(onion, 'manual', now);
  await local.peers.recordInboundHello({ protocol: 'p2pdb/1', onion, to: newIdentity().address, tables, pow_bits: 12, timestamp: now, software: 'x' }, now);
  return onion;
}

/** This side's sync service, with every peer reached at `url` over loopback HTTP. */
function serviceFor(local: LocalSide, url: string, extra: Partial<SyncServiceDeps> = {}): SyncService {
  return new SyncService({
    peers: local.peers,
    syncState: local.store.syncState,
    transportFor: () => httpSyncTransport(loopbackRequester(url)),
    ingest: (raw, request, beforeStore) => local.ingestor.ingestPeerBody(raw, request, beforeStore),
    ranges: local.store.ranges,
    allowedTables: '*',
    powBits: 12,
    heldTables: () => local.index.tables().map((t) => t.table),
    reconciler: (o) => new Reconciliation(local.index.view, { ...o, scope: { mirrors: () => true } }),
    ...extra,
  });
}

function session(local: LocalSide, extra: Partial<SessionDeps> = {}): Promise<SyncReport> {
  const scope = { mirrors: () => true };
  return runSyncSession({
    peer: 'remote',
    transport: httpSyncTransport(loopbackRequester(remote.url)),
    ingest: (raw, request, beforeStore) => local.ingestor.ingestPeerBody(raw, request, beforeStore),
    ranges: local.store.ranges,
    cursors: local.store.syncState,
    tables: local.index.tables().map((t) => t.table),
    allTables: true,
    mirrors: () => true,
    reconciler: (o) => new Reconciliation(local.index.view, { ...o, scope }),
    peerRequiresAtLeastOurBits: true,
    ...extra,
  });
}

test(onBackend('a session pulls what the peer has, pushes what it lacks, and a second one finds nothing to do'), async () => {
  const local = await localSide();
  try {
    await local.ingestor.ingest(localOnly.map((e) => e.json));
    const report = await session(local);
    assert.equal(report.stored, 30);
    assert.equal(report.rejected, 0);
    assert.equal(report.pushed, 5);
    assert.deepEqual(report.offences, { invalid: 0, wrongTable: 0, unsolicited: 0, lyingCount: 0, malformed: 0 });
    assert.deepEqual(await allIds(local.store), await allIds(remote.store));
    assert.equal((await allIds(local.store)).length, 35);
    const again = await session(local);
    assert.equal(again.fetched + again.pushed, 0);
    assert.equal(again.roundTrips, 1, 'equal sets: one round trip');
  } finally {
    await local.close();
  }
});

/**
 * Counts, while `run` runs, the JSON.parse calls on one entry's line and the SHA-256 digests
 * that are an entry's id or a table's fingerprint. Inline checks (this side's Ingestor has no
 * worker pool), so every parse and hash of the pull path happens in this thread; hashes made
 * by the peer's routes (the peer runs in this process) are left out.
 */
async function countParsesAndHashes<T>(ids: string[], tableFps: Buffer[], run: () => Promise<T>): Promise<{ result: T; parses: Map<string, number>; idHashes: Map<string, number>; tableHashes: number }> {
  const wanted = new Set(ids);
  const fps = new Set(tableFps.map((f) => f.toString('hex')));
  const parses = new Map<string, number>();
  const idHashes = new Map<string, number>();
  let tableHashes = 0;
  const originalParse = JSON.parse;
  const originalCreateHash = nodeCrypto.createHash;
  JSON.parse = function (text: string, reviver?: (this: unknown, key: string, value: unknown) => unknown) {
    if (typeof text === 'string' && text.includes('"payload"')) {
      const id = /"id":"([0-9a-f]{64})"/.exec(text)?.[1];
      if (id && wanted.has(id)) parses.set(id, (parses.get(id) ?? 0) + 1);
    }
    return originalParse(text, reviver);
  } as typeof JSON.parse;
  nodeCrypto.createHash = ((algorithm: string, options?: unknown) => {
    const h = (originalCreateHash as (a: string, o?: unknown) => ReturnType<typeof originalCreateHash>)(algorithm, options);
    const digest = h.digest.bind(h) as (...a: unknown[]) => Buffer | string;
    h.digest = ((...a: unknown[]) => {
      const out = digest(...a);
      // The peer runs in this process too: what its routes hash while serving is not this side's path.
      if (Buffer.isBuffer(out) && !new Error().stack?.includes('/http/routes/')) {
        const hex = out.toString('hex');
        if (wanted.has(hex)) idHashes.set(hex, (idHashes.get(hex) ?? 0) + 1);
        if (fps.has(hex)) tableHashes++;
      }
      return out;
    }) as typeof h.digest;
    return h;
  }) as typeof nodeCrypto.createHash;
  syncBuiltinESMExports();
  try {
    const result = await run();
    return { result, parses, idHashes, tableHashes };
  } finally {
    JSON.parse = originalParse;
    nodeCrypto.createHash = originalCreateHash;
    syncBuiltinESMExports();
  }
}

test(onBackend('an entry pulled from a peer is parsed once and its id and table hashed once on its way to the store'), async () => {
  const remoteIds = await allIds(remote.store);
  // Entries that share their first hex digit with another: a side holding all but these holds
  // something under each of their prefixes, so reconciliation lists them as ids to fetch.
  const byDigit = new Map<string, string[]>();
  for (const id of remoteIds) byDigit.set(id[0]!, [...(byDigit.get(id[0]!) ?? []), id]);
  const fetchable = [...byDigit.values()].filter((ids) => ids.length >= 2).map((ids) => ids[0]!).slice(0, 3);
  // An empty side pulls whole ranges; a side holding the rest fetches those by id.
  for (const missing of [remoteIds, fetchable]) {
    const local = await localSide();
    const held = remoteIds.length - missing.length;
    try {
      const holding = remoteIds.filter((id) => !missing.includes(id));
      if (held > 0) {
        const rows = await remote.store.ranges.byIds(holding.map((id) => Buffer.from(id, 'hex')));
        await local.ingestor.ingest(rows.map((r) => entryToJson(r.entry, r.id)));
      }
      const pulled = missing;
      const fetches: number[] = [];
      const inner = httpSyncTransport(loopbackRequester(remote.url));
      const { result: report, parses, idHashes, tableHashes } = await countParsesAndHashes(pulled, [tableFp], () =>
        session(local, { transport: { ...inner, fetch: (ids, signal) => (fetches.push(ids.length), inner.fetch(ids, signal)) } }),
      );
      assert.equal(report.stored, pulled.length);
      if (held > 0) assert.ok(fetches.length > 0, 'the few missing entries came by POST /sync/fetch');
      for (const id of pulled) {
        assert.equal(parses.get(id), 1, `entry ${id} parsed once (held ${held})`);
        assert.equal(idHashes.get(id), 1, `entry ${id}'s id hashed once (held ${held})`);
      }
      // One per entry, and one when the verifier's key cache first parses the table key.
      assert.equal(tableHashes, pulled.length + 1, `one table fingerprint per entry pulled (held ${held})`);
      assert.deepEqual(await allIds(local.store), remoteIds);
    } finally {
      await local.close();
    }
  }
});

test(onBackend('refused ids under a hex prefix, as a range pull skips them, odd and even prefix lengths'), () => {
  const refused = new RefusedIds();
  const ids = ['ab12', 'ab3f', 'a0ff', '1234'].map((h) => Buffer.from(h.padEnd(64, '0'), 'hex'));
  for (const id of ids) refused.add(id, 'bad_signature');
  refused.add(Buffer.from('ab'.padEnd(64, '1'), 'hex'), 'created_in_future'); // transient: not remembered
  // Refusals before the id is checked against the content are about a peer's bytes, not the
  // entry: a peer sending junk under a real entry's id must not stop it being fetched.
  for (const code of ['malformed', 'id_mismatch', 'bad_key', 'payload_too_large']) refused.add(Buffer.from('ab'.padEnd(64, '2'), 'hex'), code);
  const under = (prefix: string) => sortedHex(Buffer.from(refused.under(prefix)).toString('hex').match(/.{64}/g) ?? []);
  assert.deepEqual(under('ab'), sortedHex([ids[0]!, ids[1]!]));
  assert.deepEqual(under('ab3'), sortedHex([ids[1]!]));
  assert.deepEqual(under('a'), sortedHex([ids[0]!, ids[1]!, ids[2]!]));
  assert.deepEqual(under(''), sortedHex(ids));
  assert.deepEqual(under('f'), []);
});

test(onBackend('entries refused for a proof below our bits (from a peer that asks fewer) are not verified or refused again'), async () => {
  // The remote node takes 12-bit proofs; this side asks for 20, so it must refuse all of them.
  const local = await localSide(20);
  try {
    const refused = new RefusedIds();
    const first = await session(local, { refused, peerRequiresAtLeastOurBits: false });
    const remoteCount = (await allIds(remote.store)).length;
    assert.equal(first.stored, 0);
    assert.equal(first.rejected, remoteCount);
    assert.equal(first.offences.invalid, 0, 'a peer that requires fewer bits is not penalised');
    assert.equal(refused.size, remoteCount);
    // Reconciliation still finds them missing (this side holds none of the range, so the range
    // comes again), but none is verified or refused again.
    const second = await session(local, { refused, peerRequiresAtLeastOurBits: false });
    assert.equal(second.rejected, 0);
    assert.equal(second.stored, 0);
    assert.equal(await local.store.count(), 0);
  } finally {
    await local.close();
  }
});

test(onBackend('an interrupted bootstrap resumes from its saved cursor without loss or duplicates'), async () => {
  const local = await localSide();
  try {
    const total = (await allIds(remote.store)).length;
    const stop = new AbortController();
    await assert.rejects(
      session(local, {
        tuning: { pageLimit: 7 },
        signal: stop.signal,
        onProgress: (p) => {
          if (p.phase === 'range' && p.fetched >= 14) stop.abort();
        },
      }),
    );
    const [cursor] = await local.store.syncState.rangeCursors('remote');
    assert.ok(cursor, 'a cursor was saved');
    assert.equal(cursor.fetched, 14, 'the cursor stands after the second page');
    // The pull stores one page ahead of its cursor: that page may be committed already.
    const committed = await local.store.count();
    assert.ok(committed === 14 || committed === 21, `two or three pages committed (${committed})`);
    const report = await session(local, { tuning: { pageLimit: 7 }, tables: local.index.tables().map((t) => t.table) });
    assert.equal(report.resumed, 1);
    assert.equal(report.resumedFetched, total - 14, 'the resumed pull starts where the first stopped');
    assert.equal(report.duplicates, committed - 14, 'only the page beyond the cursor is fetched again, and not stored twice');
    assert.equal(report.stored, total - committed);
    assert.deepEqual(await allIds(local.store), await allIds(remote.store));
    assert.equal(await local.store.count(), total);
    assert.deepEqual(await local.store.syncState.rangeCursors('remote'), [], 'the finished range forgets its cursor');
  } finally {
    await local.close();
  }
});

test(onBackend('a peer answering malformed sync messages is penalised, then banned and no longer synced with'), async () => {
  const local = await localSide();
  const garbage = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(randomBytes(48));
    });
  });
  await new Promise<void>((resolve) => garbage.listen(0, '127.0.0.1', () => resolve()));
  const garbageUrl = `http://127.0.0.1:${(garbage.address() as AddressInfo).port}`;
  try {
    const onion = await verifiedPeer(local);
    const service = serviceFor(local, garbageUrl, { penaltyRule: { threshold: 100, banMs: 60_000 } });
    const outcomes: SyncOutcome[] = [];
    service.onOutcome((o) => outcomes.push(o));
    assert.deepEqual((await service.candidates()).map((p) => p.onion), [onion]);
    await assert.rejects(service.syncNow(onion), (e: P2pdbError) => e.code === 'sync_malformed');
    assert.equal((await local.store.syncState.penaltyOf(onion)).penalty, 50);
    assert.equal(outcomes[0]!.report!.offences.malformed, 1);
    await assert.rejects(service.syncNow(onion), (e: P2pdbError) => e.code === 'sync_malformed');
    const banned = (await local.store.syncState.penaltyOf(onion));
    assert.ok(banned.bannedUntil! > Date.now(), 'banned after two malformed answers');
    assert.equal(outcomes[1]!.banned, true);
    await assert.rejects(service.syncNow(onion), (e: P2pdbError) => e.code === 'peer_banned');
    assert.deepEqual(await service.candidates(), [], 'a banned peer is not scheduled');
    assert.equal(await local.store.count(), 0);
    await service.stop();
  } finally {
    garbage.close();
    await local.close();
  }
});

test(onBackend('a node holding part of a table pulls the rest as id-prefix ranges, page by page'), async () => {
  const local = await localSide();
  try {
    await local.ingestor.ingest([remoteEntries[0]!.json]);
    const inner = httpSyncTransport(loopbackRequester(remote.url));
    const pages: { prefix: string; after: string | null }[] = [];
    const report = await session(local, {
      tables: [tableFp],
      allTables: false,
      tuning: { pageLimit: 1 },
      transport: {
        ...inner,
        range: (req, signal) => {
          pages.push({ prefix: req.prefix, after: req.after });
          return inner.range(req, signal);
        },
      },
    });
    const total = (await allIds(remote.store)).length;
    assert.ok(total > 32, 'more than a list of ids: the peer answers with children');
    assert.equal(report.stored + report.duplicates, total - 1);
    assert.equal(report.duplicates, 0);
    assert.ok(pages.length > 0 && pages.every((p) => p.prefix.length >= 1), `pulled by id-prefix ranges: ${JSON.stringify(pages.slice(0, 3))}`);
    assert.ok(pages.some((p) => p.after?.startsWith('i')), 'continued by id cursor');
    assert.deepEqual(await allIds(local.store), await allIds(remote.store));
    assert.deepEqual(await local.store.syncState.rangeCursors('remote'), []);
  } finally {
    await local.close();
  }
});

test(onBackend('fresh entries are pushed to peers whose tables they are in, never back to the peer they came from'), async () => {
  const local = await localSide();
  const target = await startTestNode();
  let started: FreshPush | undefined;
  try {
    const mirrorsAll = newIdentity().address;
    const mirrorsOther = newIdentity().address;
    await verifiedPeer(local, '*', mirrorsAll);
    await verifiedPeer(local, [otherFp.toString('hex')], mirrorsOther);
    const puts = new Map<string, number>();
    const origins = new OriginLog();
    started = startFreshPush({
      store: local.store,
      peers: local.peers,
      syncState: local.store.syncState,
      origins,
      debounceMs: 50,
      transportFor: (onion) => {
        const inner = httpSyncTransport(loopbackRequester(target.url));
        return { ...inner, put: (body, signal) => (puts.set(onion, (puts.get(onion) ?? 0) + 1), inner.put(body, signal)) };
      },
    });
    const fresh = await makeEntries(3, tableKey, alice, 'fresh');
    origins.note([fresh[0]!.id], mirrorsAll); // as if mirrorsAll had sent it
    await local.ingestor.ingest(fresh.map((e) => e.json));
    await waitFor(async () => (await target.store.count()) === 2, { timeoutMs: 10_000, what: 'the pushed entries arrive' });
    assert.deepEqual(await allIds(target.store), sortedHex([fresh[1]!.idHex, fresh[2]!.idHex]));
    assert.equal(puts.get(mirrorsOther), undefined, 'a peer that does not mirror the table gets nothing');
    assert.equal(started.stats().pushed, 2);
  } finally {
    await started?.stop();
    await target.close();
    await local.close();
  }
});

test(onBackend('the request gate serves a few sync requests at once, queues a few more, refuses the rest as busy'), async () => {
  const gate = new RequestGate(1, 1);
  let release!: () => void;
  const first = gate.run(() => new Promise<string>((resolve) => (release = () => resolve('first'))));
  const second = gate.run(async () => 'second');
  await assert.rejects(gate.run(async () => 'third'), (e: P2pdbError) => e.code === 'busy' && e.status === 503);
  release();
  assert.deepEqual(await Promise.all([first, second]), ['first', 'second']);
  assert.equal(await gate.run(async () => 'again'), 'again');
});

test(onBackend('the scheduler syncs a new peer at once and backs off exponentially while it fails'), async () => {
  const local = await localSide();
  const deadUrl = `http://127.0.0.1:${await closedPort()}`; // nothing listens there
  let scheduler: SyncScheduler | undefined;
  try {
    const onion = await verifiedPeer(local);
    const service = serviceFor(local, deadUrl, { heldTables: () => [] });
    const attempts: number[] = [];
    service.onOutcome((o) => {
      assert.equal(o.ok, false);
      attempts.push(Date.now());
    });
    const startedAt = Date.now();
    // random() = 0.5: no jitter, and a new peer is due after half of min(2 s, interval).
    scheduler = startSyncScheduler({ service, intervalMs: 60_000, tickMs: 50, retryBaseMs: 300, random: () => 0.5 });
    await waitFor(() => attempts.length >= 4, { timeoutMs: 20_000, what: 'four failed attempts' });
    assert.ok(attempts[0]! - startedAt >= 1000 - 5, 'a new peer is due within about a second');
    const gaps = attempts.slice(1, 4).map((t, i) => t - attempts[i]!);
    gaps.forEach((gap, i) => assert.ok(gap >= 300 * 2 ** i - 5, `gap ${i + 1} is ${gap} ms, at least ${300 * 2 ** i}`));
    assert.equal((await local.store.syncState.penaltyOf(onion)).penalty, 0, 'an unreachable peer is not penalised, only retried later');
    await scheduler.stop();
    await service.stop();
  } finally {
    await scheduler?.stop();
    await local.close();
  }
});

test(onBackend('the local control listener wants its bearer token and streams a sync as NDJSON lines'), async () => {
  const local = await localSide();
  const service = serviceFor(local, remote.url);
  const control = await startControlListener(service, silentLogger);
  try {
    assert.match(control.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const post = (body: string, token?: string, method = 'POST') =>
      fetch(`${control.url}/control/sync`, { method, headers: token ? { authorization: `Bearer ${token}` } : {}, ...(method === 'POST' ? { body } : {}) });
    for (const token of [undefined, '0'.repeat(64), control.token.slice(1)]) {
      const r = await post('{}', token);
      assert.equal(r.status, 401);
      assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'unauthorized');
    }
    assert.equal((await post('', control.token, 'GET')).status, 405);
    assert.equal((await post('not json', control.token)).status, 400);
    const onion = newIdentity().address;
    const unknown = await post(JSON.stringify({ peer: onion }), control.token);
    assert.equal(unknown.status, 200);
    assert.deepEqual(
      (await unknown.text()).trim().split('\n').map((l) => (JSON.parse(l) as { type: string; code?: string })),
      [{ type: 'error', code: 'not_found', message: `${onion} is not a verified peer (say hello first)` }],
    );

    // A verified peer (the loopback remote stands for it): progress lines, then the report.
    await verifiedPeer(local, '*', onion);
    const lines = (await (await post(JSON.stringify({ peer: onion }), control.token)).text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; phase?: string; stored?: number });
    assert.ok(lines.some((l) => l.type === 'progress' && l.phase === 'range'));
    const last = lines[lines.length - 1]!;
    assert.equal(last.type, 'report');
    assert.equal(last.stored, (await allIds(remote.store)).length);
  } finally {
    await control.close();
    await service.stop();
    await local.close();
  }
});

test(onBackend('p2pdb sync without a running node says so'), async () => {
  const r = await runScript(CLI_MAIN, ['sync', newIdentity().address, '--data', tempDir('p2pdb-sync-cli-')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /error \[node_unreachable\]: no running node with Tor found/);
  const usage = await runScript(CLI_MAIN, ['sync']);
  assert.equal(usage.code, 2);
});

test(onBackend('syncIntervalMs is a setting: 0 turns the periodic sync off, nonsense is refused'), () => {
  assert.equal(resolveConfig({}).syncIntervalMs, 60_000);
  assert.equal(resolveConfig({ syncIntervalMs: '0' }).syncIntervalMs, 0);
  assert.equal(resolveConfig(configFromEnv({ P2PDB_SYNC_INTERVAL_MS: '5000' })).syncIntervalMs, 5000);
  assert.throws(() => resolveConfig({ syncIntervalMs: -1 }), (e: P2pdbError) => e.code === 'config_invalid');
});

test(onBackend('shared tables: our policy meets the peer’s claim; penalties: points per offence, capped at the threshold'), () => {
  const [t1, t2, t3] = ['11', '22', '33'].map((c) => c.repeat(32));
  const held = [Buffer.from(t3!, 'hex')];
  const hex = (s: ReturnType<typeof sharedTables>) => s && { tables: s.tables.map((b) => b.toString('hex')), allTables: s.allTables };
  assert.deepEqual(hex(sharedTables('*', '*', held)), { tables: [t3], allTables: true });
  assert.deepEqual(hex(sharedTables('*', [t2!, t1!], held)), { tables: [t1, t2], allTables: false });
  assert.deepEqual(hex(sharedTables([t2!, t1!], '*', held)), { tables: [t1, t2], allTables: false });
  assert.deepEqual(hex(sharedTables([t1!, t2!], [t2!, t3!], held)), { tables: [t2], allTables: false });
  assert.equal(sharedTables([t1!], [t2!], held), null, 'nothing shared: nothing to sync');
  assert.ok(claims('*', t1!) && claims([t1!], t1!) && !claims([t2!], t1!) && !claims(null, t1!));

  assert.equal(penaltyPoints({ invalid: 2, wrongTable: 1, unsolicited: 1, lyingCount: 0, malformed: 0 }), 40);
  assert.equal(penaltyPoints({ invalid: 0, wrongTable: 0, unsolicited: 0, lyingCount: 1, malformed: 1 }), 75);
  assert.equal(penaltyPoints({ invalid: 50, wrongTable: 0, unsolicited: 0, lyingCount: 0, malformed: 0 }), 100, 'one session can ban, no more');
  assert.equal(offenceOf('bad_signature', true), 'invalid');
  assert.equal(offenceOf('table_not_allowed', true), 'wrongTable');
  assert.equal(offenceOf('pow_insufficient', true), 'invalid');
  assert.equal(offenceOf('pow_insufficient', false), null, 'a peer that requires fewer bits is not lying');
  assert.equal(offenceOf('created_in_future', true), null, 'clock skew is not an offence');
});

test(onBackend('a node whose sync index must be rebuilt serves puts and reads at once; sync answers busy until the index is ready'), async () => {
  const dataDir = tempDir('p2pdb-index-rebuild-');
  const config = resolveConfig({ dataDir, port: 0, powBits: 12 });
  const first = await startNode(config, { log: silentLogger });
  const stored = await makeEntries(12, tableKey, alice, 'before');
  assert.equal((await putAll(first.url, stored)).stored, 12);
  await first.close();
  rmSync(path.join(dataDir, SNAPSHOT_FILE)); // as after an upgrade, or a snapshot found corrupt

  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const node = await startNode(config, { log: silentLogger, syncIndexWaitMs: 50, syncIndexHold: () => held });
  try {
    assert.equal(node.syncIndex.isReady, false);
    const at = (p: string, init?: RequestInit) => fetch(`${node.url}${p}`, init);
    assert.equal((await at('/hello/')).status, 200);
    const during = await makeEntries(1, tableKey, alice, 'while the index loads');
    assert.equal((await putAll(node.url, during)).stored, 1);
    const page = (await (await at(`/get/?tables=${tableFp.toString('hex')}&after=0`)).json()) as { entries: unknown[] };
    assert.equal(page.entries.length, 13);
    const request = encodeRequest({ allTables: false, tables: [{ table: tableFp, items: [{ kind: 'none', prefix: '' }] }] });
    for (const [p, init] of [['/index/', undefined], ['/sync/', { method: 'POST', body: request, headers: { 'content-type': 'application/octet-stream' } }]] as const) {
      const r = await at(p, init);
      assert.equal(r.status, 503, p);
      assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'busy', p);
    }

    release();
    await node.syncIndex.ready;
    const index = (await (await at('/index/')).json()) as { tables: { table: string; count: number }[] };
    assert.deepEqual(index.tables.map((t) => [t.table, t.count]), [[tableFp.toString('hex'), 13]], 'the entry put while loading is counted');
    assert.equal((await at('/sync/', { method: 'POST', body: request, headers: { 'content-type': 'application/octet-stream' } })).status, 200);
  } finally {
    release();
    await node.close();
  }
});
