/**
 * GET /subscribe/ against a real node (SQLite, HTTP on loopback): the exact SSE wire format,
 * replay from a cursor then live entries, the /get/ filters, refusals, bounded subscribers,
 * a slow reader dropped and resuming, and no store listener left behind.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { randomBytes } from 'node:crypto';
import { resolveConfig } from '../src/config/config.js';
import { parsePublicKey } from '../src/crypto/keys.js';
import { startNode, type RunningNode } from '../src/node/node.js';
import { waitFor } from '../src/tor/wait.js';
import { silentLogger } from '../src/util/log.js';
import { getJson, makeEntry, postJson, testKey, type MadeEntry, type TestKey } from './helpers/entries.js';
import { openStream, type RawStream } from './helpers/sse.js';
import { tempDir } from './helpers/tmp.js';
import { onBackend } from './helpers/backend.js';

const MAX_SUBSCRIBERS = 12;
let node: RunningNode;
let table: TestKey;
let table2: TestKey;
let alice: TestKey;
let bob: TestKey;
const open: RawStream[] = [];
/** Listeners the node itself registers (sync pushes new entries to peers). */
let own = 0;

const fp = (k: TestKey) => parsePublicKey(k.publicPem).fingerprint.toString('hex');
const listeners = () => node.store.listenerCount;

async function put(made: MadeEntry): Promise<void> {
  const res = await postJson(`${node.url}/put/${made.idHex}`, made.json);
  assert.equal(res.status, 201, JSON.stringify(res.body));
}

async function subscribe(query: string, headers: Record<string, string> = {}): Promise<RawStream> {
  const s = await openStream(`${node.url}/subscribe/?${query}`, headers);
  open.push(s);
  return s;
}

async function noListenersLeft(): Promise<void> {
  await waitFor(() => listeners() === own, { timeoutMs: 10_000, intervalMs: 10, what: `store listeners back to ${own} (now ${listeners()})` });
}

before(async () => {
  node = await startNode(resolveConfig({ dataDir: tempDir('p2pdb-sub-'), port: 0, powBits: 4 }), {
    log: silentLogger,
    subscribe: { maxSubscribers: MAX_SUBSCRIBERS, keepaliveMs: 150, highWaterBytes: 32 * 1024, stallMs: 500 },
  });
  [table, table2, alice, bob] = [testKey(), testKey(), testKey(), testKey()];
  own = listeners();
});
after(async () => {
  for (const s of open) s.close();
  await node.close();
});

describe(onBackend('GET /subscribe/'), () => {
  it('replays what is stored after the cursor, then sends new entries as they are committed, in the /get/ form', async () => {
    const e1 = await makeEntry({ table, to: alice, text: 'one', bits: 4 });
    const e2 = await makeEntry({ table, to: alice, text: 'two', bits: 4 });
    await put(e1);
    await put(e2);
    const s = await subscribe(`recipients=${fp(alice)}&after=0`);
    assert.equal(s.status, 200);
    assert.match(String(s.headers['content-type']), /^text\/event-stream/);
    assert.equal(s.headers['cache-control'], 'no-store');
    await s.waitForEntries(2);
    const e3 = await makeEntry({ table, to: alice, text: 'three', bits: 4 });
    await put(e3);
    await s.waitForEntries(3);
    const got = s.entries();
    assert.deepEqual(got.map((e) => e.id), [e1.idHex, e2.idHex, e3.idHex]);
    // Each event is exactly: id = seq, event: entry, data = the /get/ object on one line.
    const fromGet = (await getJson(`${node.url}/get/?recipients=${fp(alice)}&after=0`)).body.entries;
    assert.deepEqual(got, fromGet);
    for (const e of got) assert.ok(s.text().includes(`id: ${e.seq}\nevent: entry\ndata: ${JSON.stringify(e)}\n\n`), 'wire format');
    s.close();
    await noListenersLeft();
  });

  it('without a cursor sends only entries committed after it opened; Last-Event-ID wins over after=', async () => {
    const live = await subscribe(`recipients=${fp(alice)}`);
    const first = (await getJson(`${node.url}/get/?recipients=${fp(alice)}&after=0`)).body.entries[0];
    const resumed = await subscribe(`recipients=${fp(alice)}&after=0`, { 'Last-Event-ID': first.seq });
    const e4 = await makeEntry({ table, to: alice, text: 'four', bits: 4 });
    await put(e4);
    await live.waitForEntries(1);
    await resumed.waitForEntries(3);
    assert.deepEqual(live.entries().map((e) => e.id), [e4.idHex]);
    assert.equal(resumed.entries().length, 3, 'entries after the first: two, three, four');
    assert.ok(resumed.entries().every((e) => Number(e.seq) > Number(first.seq)));
    live.close();
    resumed.close();
    await noListenersLeft();
  });

  it('applies the /get/ filters: tables, recipients, ids, seconds_since, all combined', async () => {
    const byTable = await subscribe(`tables=${fp(table2)}`);
    const toBob = await subscribe(`recipients=${fp(bob)}`);
    const both = await subscribe(`tables=${fp(table2)}&recipients=${fp(bob)}&seconds_since=600`);
    const x = await makeEntry({ table: table2, to: alice, text: 'x', bits: 4 });
    const y = await makeEntry({ table, to: bob, text: 'y', bits: 4 });
    const z = await makeEntry({ table: table2, to: bob, text: 'z', bits: 4 });
    const byId = await subscribe(`ids=${z.idHex}&after=0`);
    for (const e of [x, y, z]) await put(e);
    await byTable.waitForEntries(2);
    await toBob.waitForEntries(2);
    await both.waitForEntries(1);
    await byId.waitForEntries(1);
    // One more entry that matches all four and is committed last: once it arrives, nothing else can be pending.
    const last = await makeEntry({ table: table2, to: bob, text: 'last', bits: 4 });
    await put(last);
    const idsOf = (s: RawStream) => s.entries().map((e) => e.id);
    await waitFor(() => [byTable, toBob, both].every((s) => idsOf(s).includes(last.idHex)), { timeoutMs: 10_000, intervalMs: 10, what: 'the last entry everywhere' });
    assert.deepEqual(idsOf(byTable), [x.idHex, z.idHex, last.idHex]);
    assert.deepEqual(idsOf(toBob), [y.idHex, z.idHex, last.idHex]);
    assert.deepEqual(idsOf(both), [z.idHex, last.idHex]);
    assert.deepEqual(idsOf(byId), [z.idHex]);
    for (const s of [byTable, toBob, both, byId]) s.close();
    await noListenersLeft();
  });

  it('refuses bad filters with a JSON 400 before any stream starts, and registers nothing', async () => {
    const cases: [string, Record<string, string>, string][] = [
      ['tables=zz', {}, 'malformed'],
      ['', {}, 'bad_request'],
      ['after=-1', {}, 'bad_request'],
      [`recipients=${fp(alice)}&after=1&after=2`, {}, 'bad_request'],
      [`recipients=${fp(alice)}`, { 'Last-Event-ID': 'abc' }, 'bad_request'],
    ];
    for (const [query, headers, code] of cases) {
      const res = await fetch(`${node.url}/subscribe/?${query}`, { headers });
      assert.equal(res.status, 400, query);
      assert.match(res.headers.get('content-type') ?? '', /json/);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, code, query);
    }
    const head = await fetch(`${node.url}/subscribe/?recipients=${fp(alice)}`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(listeners(), own, 'a HEAD holds no subscription');
    // limit is not used by /subscribe/: ignored, not refused.
    const ok = await subscribe(`recipients=${fp(alice)}&limit=99999`);
    assert.equal(ok.status, 200);
    ok.close();
    await noListenersLeft();
  });

  it('sends keepalive comments while idle', async () => {
    const s = await subscribe(`recipients=${"00".repeat(32)}`);
    await waitFor(() => s.text().split(': keepalive\n\n').length >= 3, { timeoutMs: 10_000, intervalMs: 20, what: 'two keepalives' });
    s.close();
    await noListenersLeft();
  });

  it('serves many subscribers at once, refuses one more with 503 too_many_subscribers, and frees slots on disconnect', async () => {
    const streams: RawStream[] = [];
    for (let i = 0; i < MAX_SUBSCRIBERS; i++) streams.push(await subscribe(`tables=${fp(table)}`));
    assert.equal(listeners(), own + MAX_SUBSCRIBERS);
    const refused = await fetch(`${node.url}/subscribe/?tables=${fp(table)}`);
    assert.equal(refused.status, 503);
    assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'too_many_subscribers');
    const e = await makeEntry({ table, to: bob, text: 'for everyone', bits: 4 });
    await put(e);
    for (const s of streams) await s.waitForEntries(1);
    assert.ok(streams.every((s) => s.entries().length === 1 && s.entries()[0]!.id === e.idHex));
    for (const s of streams) s.close();
    await noListenersLeft();
    const again = await subscribe(`tables=${fp(table)}`);
    assert.equal(again.status, 200, 'a slot is free again');
    again.close();
    await noListenersLeft();
  });

  it('drops a reader that stops reading (bounded memory), which then resumes by Last-Event-ID without gaps or repeats', async () => {
    const big = testKey();
    const made: MadeEntry[] = [];
    // ~87 KB of JSON each: 120 of them overflow the loopback socket buffers (about 4.3 MB here).
    for (let i = 0; i < 120; i++) made.push(await makeEntry({ table: big, to: alice, text: randomBytes(30_000).toString('hex'), bits: 4 }));
    const slow = await subscribe(`tables=${fp(big)}&after=0`);
    slow.res.pause();
    const batch = await postJson(`${node.url}/put/`, made.map((m) => m.json));
    assert.equal(batch.body.stored, 120);
    await noListenersLeft(); // dropped: its listener and slot are gone
    slow.res.resume();
    await waitFor(() => slow.closed(), { timeoutMs: 10_000, what: 'the dropped stream to end' });
    const seen = slow.entries();
    assert.ok(seen.length < 120, `the slow reader got ${seen.length} of 120 before the drop`);
    const resumed = await subscribe(`tables=${fp(big)}&after=0`, seen.length ? { 'Last-Event-ID': seen[seen.length - 1]!.seq } : {});
    await resumed.waitForEntries(120 - seen.length);
    assert.deepEqual([...seen, ...resumed.entries()].map((e) => e.id), made.map((m) => m.idHex));
    resumed.close();
    await noListenersLeft();
  });

  it('ends open streams when the node closes, so close() does not hang', async () => {
    const other = await startNode(resolveConfig({ dataDir: tempDir('p2pdb-sub2-'), port: 0, powBits: 4 }), { log: silentLogger });
    const s = await openStream(`${other.url}/subscribe/?recipients=${fp(alice)}`);
    assert.equal(s.status, 200);
    await other.close();
    await waitFor(() => s.closed(), { timeoutMs: 5_000, what: 'the stream to end' });
  });
});

