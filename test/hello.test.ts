/**
 * The signed hello and the peer table without Tor: /hello/ routes on a Koa app over real HTTP
 * on 127.0.0.1 with a real SQLite file; forged hellos refused with their codes; ?tables=
 * filtering; the table's bound and ageing; the peer client's refusal to dial anything but
 * onions through SOCKS; the `peers` CLI; and the hello vectors published in docs/PROTOCOL.md.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import Koa from 'koa';
import { run } from '../src/cli/main.js';
import type { CliIo } from '../src/cli/context.js';
import { P2pdbError } from '../src/errors.js';
import { errorMiddleware, hardeningHeaders } from '../src/http/errors.js';
import { helloRoutes, type HelloInfo } from '../src/http/routes/hello.js';
import { identityFromSeed, newIdentity, signAsOnion, type OnionIdentity } from '../src/identity/onion-key.js';
import {
  checkSignedHello,
  helloSigningText,
  HELLO_WINDOW_MS,
  makeSignedHello,
  MAX_HELLO_BODY_BYTES,
  parseHelloMessage,
  type HelloMessage,
  type SignedHello,
} from '../src/peers/hello.js';
import { HelloThrottle } from '../src/peers/hello-throttle.js';
import { PeerClient } from '../src/peers/peer-client.js';
import { carriesTables, parseTablesQuery, readPeerClaims, selectPeers, type PeerSummary } from '../src/peers/peer-list.js';
import type { PeerTable, PeerTableOptions } from '../src/store/peer-table.js';
import { startPeering } from '../src/peers/peering.js';
import { baseDelayMs, DEFAULT_SCHEDULE, nextAttemptAt, withJitter } from '../src/peers/schedule.js';
import { openStore } from '../src/store/open.js';
import type { Store } from '../src/store/types.js';
import { freshDatabase, onBackend, openPeerTable } from './helpers/backend.js';
import { freePort } from '../src/tor/ports.js';
import { waitFor } from '../src/tor/wait.js';
import { peerAgent } from '../src/tor/socks.js';
import { silentLogger } from '../src/util/log.js';
import { tempDir } from './helpers/tmp.js';

const SOFTWARE = 'p2pdb/test';
const T1 = '1'.repeat(64);
const T2 = '2'.repeat(64);
const T3 = '3'.repeat(64);

function info(tables: HelloInfo['tables'] = '*', powBits = 12): HelloInfo {
  return {
    protocol: 'p2pdb/1',
    software: SOFTWARE,
    tables,
    pow_bits: powBits,
    limits: { max_payload_bytes: 65536, max_body_bytes: 1 << 20, max_batch_entries: 100, max_future_skew_ms: 300000 },
  };
}

/** A node's hello side: the routes on a Koa app, the entry store and the peer table on one SQLite file. */
interface HelloNode {
  url: string;
  identity: OnionIdentity | null;
  peers: PeerTable;
  store: Store;
  now: number;
  close(): Promise<void>;
}

async function startHelloNode(
  opts: { identity?: OnionIdentity | null; limits?: PeerTableOptions['limits']; throttle?: HelloThrottle } = {},
): Promise<HelloNode> {
  const identity = opts.identity === undefined ? newIdentity() : opts.identity;
  const store = await openStore({ database: await freshDatabase(tempDir('p2pdb-hello-')), durability: 'normal' });
  const peers = store.peers({ ...(identity ? { self: identity.address } : {}), ...(opts.limits ? { limits: opts.limits } : {}) });
  const app = new Koa();
  app.silent = true;
  app.use(errorMiddleware(silentLogger));
  app.use(hardeningHeaders());
  const node = { identity, peers, store, now: Date.now() } as HelloNode;
  const router = helloRoutes({ info: info(), identity, peerStore: peers, clock: () => node.now, ...(opts.throttle ? { throttle: opts.throttle } : {}) });
  app.use(router.routes());
  app.use(router.allowedMethods({ throw: true }));
  const server = http.createServer(app.callback());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  node.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  node.close = async () => {
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    await store.close();
  };
  return node;
}

async function postHello(url: string, body: unknown, contentType = 'application/json'): Promise<{ status: number; body: any }> {
  const res = await fetch(`${url}/hello/`, { method: 'POST', headers: { 'content-type': contentType }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

async function getHello(url: string, query = ''): Promise<{ status: number; body: any }> {
  const res = await fetch(`${url}/hello/${query}`);
  return { status: res.status, body: await res.json() };
}

/** A hello with arbitrary fields, signed by `signer` (which need not own `hello.onion`). */
function signedBy(signer: OnionIdentity, hello: HelloMessage): SignedHello {
  return { hello, signature: signAsOnion(signer, Buffer.from(helloSigningText(hello), 'utf8')).toString('base64') };
}

function helloFrom(from: OnionIdentity, to: string, now: number, self: Partial<HelloMessage> = {}): HelloMessage {
  return { protocol: 'p2pdb/1', onion: from.address, to, tables: '*', pow_bits: 12, timestamp: now, software: SOFTWARE, ...self };
}

function isCode(code: string) {
  return (err: unknown) => err instanceof P2pdbError && err.code === code;
}

// --- the vectors in docs/PROTOCOL.md ---

interface HelloVectors {
  keys: Record<string, { seed_hex: string; public_key_hex: string; onion: string }>;
  hellos: { name: string; signer: string; body: SignedHello; signing_text: string }[];
}

describe('hello vectors in docs/PROTOCOL.md', () => {
  const doc = readFileSync(new URL('../../docs/PROTOCOL.md', import.meta.url), 'utf8');

  it('rebuild exactly: keys, onion addresses, signing text, signature', () => {
    const blocks = [...doc.matchAll(/^```json hello-vectors[ \t]*\r?\n([\s\S]*?)^```[ \t]*$/gm)];
    assert.equal(blocks.length, 1, 'exactly one ```json hello-vectors block');
    // Each text block names its hello: a reader pairs them by name, not by position.
    const texts = new Map([...doc.matchAll(/^```text hello-signing-text[ \t]+(\S+)[ \t]*\r?\n([\s\S]*?)^```[ \t]*$/gm)].map((m) => [m[1]!, m[2]!]));
    const unnamed = [...doc.matchAll(/^```text hello-signing-text[ \t]*\r?$/gm)];
    assert.equal(unnamed.length, 0, 'every hello-signing-text block names its hello');
    const v = JSON.parse(blocks[0]![1]!) as HelloVectors;
    assert.ok(v.hellos.length >= 2);
    assert.deepEqual([...texts.keys()].sort(), v.hellos.map((h) => h.name).sort(), 'one text block per hello vector, by name');
    const ids = Object.fromEntries(Object.entries(v.keys).map(([name, k]) => [name, identityFromSeed(Buffer.from(k.seed_hex, 'hex'))]));
    for (const [name, k] of Object.entries(v.keys)) {
      assert.equal(ids[name]!.publicKey.toString('hex'), k.public_key_hex, name);
      assert.equal(ids[name]!.address, k.onion, name);
    }
    v.hellos.forEach((h) => {
      const hello = parseHelloMessage(h.body.hello);
      assert.equal(helloSigningText(hello), h.signing_text, h.name);
      assert.equal(texts.get(h.name), h.signing_text, `${h.name}: the text block shows the same bytes`);
      // Ed25519 is deterministic: signing again gives the published signature exactly.
      const signer = ids[h.signer]!;
      assert.deepEqual(makeSignedHello(signer, hello.to, hello, hello.timestamp), h.body, h.name);
      assert.deepEqual(checkSignedHello(h.body, { self: hello.to, now: hello.timestamp }), hello);
      const bad = Buffer.from(h.body.signature, 'base64');
      bad[63]! ^= 1;
      assert.throws(() => checkSignedHello({ ...h.body, signature: bad.toString('base64') }, { self: hello.to, now: hello.timestamp }), isCode('bad_signature'));
    });
  });
});

// --- POST /hello/ ---

describe(onBackend('POST /hello/'), () => {
  let callee: HelloNode;
  const alice = newIdentity();

  before(async () => {
    callee = await startHelloNode();
  });
  after(() => callee.close());

  async function expectRefused(body: unknown, status: number, code: string, contentType?: string) {
    const before = await callee.peers.count();
    const res = await postHello(callee.url, body, contentType);
    assert.equal(res.status, status, JSON.stringify(res.body));
    assert.equal(res.body.error?.code, code, JSON.stringify(res.body));
    assert.equal(await callee.peers.count(), before, 'a refused hello records nothing');
  }

  it('accepts a valid signed hello, records the caller as verified and answers with its own signed hello', async () => {
    const sent = makeSignedHello(alice, callee.identity!.address, { tables: [T2, T1], pow_bits: 16, software: 'alice/1.0' }, callee.now - 60_000);
    assert.deepEqual(sent.hello.tables, [T1, T2], 'tables are sent sorted');
    const res = await postHello(callee.url, sent);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.onion, callee.identity!.address);
    assert.equal(res.body.protocol, 'p2pdb/1');
    assert.ok(Array.isArray(res.body.peers));
    assert.ok(!res.body.peers.some((p: PeerSummary) => p.onion === alice.address), 'the caller is not listed back to itself');
    // The answer proves who answered: a hello from the callee, to alice, fresh.
    const theirs = checkSignedHello({ hello: res.body.hello, signature: res.body.signature }, { self: alice.address, now: Date.now() });
    assert.equal(theirs.onion, callee.identity!.address);

    const peer = await callee.peers.get(alice.address);
    assert.ok(peer);
    assert.equal(peer.verified, true);
    assert.equal(peer.source, 'hello');
    assert.deepEqual(peer.tables, [T1, T2]);
    assert.equal(peer.powBits, 16);
    assert.equal(peer.software, 'alice/1.0');
    assert.equal(peer.lastSeen, callee.now);
    // Proving the key is not reaching the onion: alice is not listed to others yet.
    const listed = (await getHello(callee.url)).body.peers as PeerSummary[];
    assert.equal(listed.find((p) => p.onion === alice.address), undefined, 'a peer that only said hello is not listed');
  });

  it('a peer that only said hello is listed once we reached it, and not while our latest dial fails', async () => {
    const bob = newIdentity();
    const self = callee.identity!.address;
    const t = callee.now;
    const isListed = async () => ((await getHello(callee.url)).body.peers as PeerSummary[]).some((p) => p.onion === bob.address);
    assert.equal((await postHello(callee.url, makeSignedHello(bob, self, { tables: '*', pow_bits: 12, software: SOFTWARE }, t))).status, 200);
    assert.equal(await isListed(), false, 'inbound hello only');
    // The peering loop greets the new sender back; a failed dial does not list it...
    await callee.peers.recordFailure(bob.address, t + 1, () => t + 30_000);
    assert.equal(await isListed(), false, 'our dial failed');
    // ...its signed answer when we reach its onion does (what peering.ts records on success).
    await callee.peers.recordContact(helloFrom(bob, self, t + 2), t + 2, t + 600_000);
    assert.equal(await isListed(), true, 'reached by us');
    const item = ((await getHello(callee.url)).body.peers as PeerSummary[]).find((p) => p.onion === bob.address);
    assert.deepEqual(item, { onion: bob.address, tables: '*', pow_bits: 12, last_seen: t + 2 });
    // Unreachable again: not listed until a dial succeeds again, whatever it says to us meanwhile.
    await callee.peers.recordFailure(bob.address, t + 3, () => t + 30_000);
    assert.equal((await postHello(callee.url, makeSignedHello(bob, self, { tables: '*', pow_bits: 12, software: 'bob/2' }, t + 4))).status, 200);
    assert.equal(await isListed(), false, 'latest dial failed; an inbound hello does not make up for it');
    await callee.peers.recordContact(helloFrom(bob, self, t + 5), t + 5, t + 600_000);
    assert.equal(await isListed(), true);
  });

  it('refuses a hello for a claimed address signed by another key: bad_signature', async () => {
    const mallory = newIdentity();
    const victim = newIdentity();
    await expectRefused(signedBy(mallory, helloFrom(victim, callee.identity!.address, callee.now)), 403, 'bad_signature');
    // A valid signature over other content does not carry over either.
    const real = makeSignedHello(victim, callee.identity!.address, { tables: '*', pow_bits: 12, software: SOFTWARE }, callee.now);
    await expectRefused({ ...real, hello: { ...real.hello, pow_bits: 13 } }, 403, 'bad_signature');
    assert.equal(await callee.peers.get(victim.address), undefined);
  });

  it('refuses a hello addressed to another node: hello_misaddressed', async () => {
    const other = newIdentity();
    await expectRefused(makeSignedHello(alice, other.address, info(), callee.now), 403, 'hello_misaddressed');
  });

  it('refuses a stale or future timestamp outside ±10 minutes: hello_stale', async () => {
    const to = callee.identity!.address;
    await expectRefused(makeSignedHello(newIdentity(), to, info(), callee.now - HELLO_WINDOW_MS - 1), 403, 'hello_stale');
    await expectRefused(makeSignedHello(newIdentity(), to, info(), callee.now + HELLO_WINDOW_MS + 1), 403, 'hello_stale');
    // The edges of the window are inside it.
    assert.equal((await postHello(callee.url, makeSignedHello(newIdentity(), to, info(), callee.now - HELLO_WINDOW_MS))).status, 200);
    assert.equal((await postHello(callee.url, makeSignedHello(newIdentity(), to, info(), callee.now + HELLO_WINDOW_MS))).status, 200);
  });

  it("refuses a hello claiming the callee's own address, even one signed with its key: hello_self", async () => {
    const me = callee.identity!;
    await expectRefused(signedBy(newIdentity(), helloFrom(me, me.address, callee.now)), 403, 'hello_self');
    await expectRefused(makeSignedHello(me, me.address, info(), callee.now), 403, 'hello_self');
  });

  it('refuses malformed hellos with malformed', async () => {
    const to = callee.identity!.address;
    const good = makeSignedHello(alice, to, info(), callee.now);
    const badChecksum = alice.address.slice(0, 50) + alice.address.slice(50, 56).split('').reverse().join('') + '.onion';
    const variants: [string, unknown][] = [
      ['not JSON', '{"hello":'],
      ['an array', [good]],
      ['no signature', { hello: good.hello }],
      ['no hello', { signature: good.signature }],
      ['unpadded signature', { ...good, signature: good.signature.replace(/=+$/, '') }],
      ['short signature', { ...good, signature: Buffer.alloc(32).toString('base64') }],
      ['onion with a bad checksum', signedBy(alice, { ...good.hello, onion: badChecksum })],
      ['to that is not an onion', signedBy(alice, { ...good.hello, to: 'example.com' })],
      ['v2 onion', signedBy(alice, { ...good.hello, onion: 'abcdefghijklmnop.onion' })],
      ['unsorted tables', signedBy(alice, { ...good.hello, tables: [T2, T1] })],
      ['duplicate tables', signedBy(alice, { ...good.hello, tables: [T1, T1] })],
      ['upper-case table', signedBy(alice, { ...good.hello, tables: [T1.toUpperCase().replace(/1/g, 'A')] })],
      ['too many tables', signedBy(alice, { ...good.hello, tables: Array.from({ length: 1001 }, (_, i) => i.toString(16).padStart(64, '0')) })],
      ['tables as a string', { ...good, hello: { ...good.hello, tables: T1 } }],
      ['pow_bits too high', signedBy(alice, { ...good.hello, pow_bits: 65 })],
      ['pow_bits not an integer', signedBy(alice, { ...good.hello, pow_bits: 12.5 })],
      ['timestamp as a string', { ...good, hello: { ...good.hello, timestamp: String(callee.now) } }],
      ['software with a line break', signedBy(alice, { ...good.hello, software: 'x\npow_bits=1' })],
      ['software too long', signedBy(alice, { ...good.hello, software: 'x'.repeat(65) })],
      ['empty software', signedBy(alice, { ...good.hello, software: '' })],
      ['another protocol', signedBy(alice, { ...good.hello, protocol: 'p2pdb/2' })],
    ];
    for (const [why, body] of variants) {
      const res = await postHello(callee.url, body);
      assert.equal(res.status, 400, `${why}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, 'malformed', why);
    }
  });

  it('refuses an oversize body (413) and other content types (415)', async () => {
    const good = makeSignedHello(alice, callee.identity!.address, info(), callee.now);
    await expectRefused(JSON.stringify({ ...good, padding: 'x'.repeat(MAX_HELLO_BODY_BYTES) }), 413, 'payload_too_large');
    await expectRefused(new URLSearchParams({ hello: JSON.stringify(good.hello), signature: good.signature }).toString(), 415, 'unsupported_media_type', 'application/x-www-form-urlencoded');
  });

  it('answers tor_off (503) when the node has no onion identity; GET still works', async () => {
    const off = await startHelloNode({ identity: null });
    try {
      const res = await postHello(off.url, makeSignedHello(alice, newIdentity().address, info(), off.now));
      assert.equal(res.status, 503);
      assert.equal(res.body.error.code, 'tor_off');
      // §8.4 step 0: before the type and the size are looked at.
      const wrongType = await postHello(off.url, 'x'.repeat(200 * 1024), 'text/plain');
      assert.deepEqual([wrongType.status, wrongType.body.error.code], [503, 'tor_off']);
      const got = await getHello(off.url);
      assert.equal(got.status, 200);
      assert.equal(got.body.onion, undefined);
      assert.deepEqual(got.body.peers, []);
    } finally {
      await off.close();
    }
  });
});

// --- GET /hello/?tables= ---

describe(onBackend('POST /hello/ write limits'), () => {
  it('new onions past the budget get 429 rate_limited and are not stored; the budget refills with time', async () => {
    const callee = await startHelloNode({ throttle: new HelloThrottle({ newPeersPerMinute: 6, newPeerBurst: 3 }) });
    try {
      const hello = (id: OnionIdentity) => makeSignedHello(id, callee.identity!.address, { tables: '*', pow_bits: 16, software: 'x/1' }, callee.now);
      const ids = Array.from({ length: 5 }, () => newIdentity());
      const answers = [];
      for (const id of ids) answers.push(await postHello(callee.url, hello(id)));
      assert.deepEqual(answers.map((a) => a.status), [200, 200, 200, 429, 429]);
      assert.equal(answers[3]!.body.error.code, 'rate_limited');
      assert.match(answers[3]!.body.error.message, /try again in 10 s/);
      assert.equal(await callee.peers.count(), 3, 'refused hellos wrote nothing');
      // A peer already known is not a new peer: it still gets in while the budget is spent.
      assert.equal((await postHello(callee.url, makeSignedHello(ids[0]!, callee.identity!.address, { tables: '*', pow_bits: 20, software: 'x/2' }, callee.now))).status, 200);
      assert.equal((await callee.peers.get(ids[0]!.address))?.powBits, 20, 'a changed description is written at once');
      callee.now += 10_000; // one token at 6 a minute
      assert.equal((await postHello(callee.url, hello(ids[3]!))).status, 200);
      assert.equal((await postHello(callee.url, hello(ids[4]!))).status, 429);
      assert.equal(await callee.peers.count(), 4);
    } finally {
      await callee.close();
    }
  });

  it('the same hello again within the refresh interval is answered but not written; after it, it is', async () => {
    const callee = await startHelloNode({ throttle: new HelloThrottle({ refreshIntervalMs: 60_000 }) });
    try {
      const alice = newIdentity();
      const send = async () => {
        const res = await postHello(callee.url, makeSignedHello(alice, callee.identity!.address, { tables: '*', pow_bits: 16, software: 'a/1' }, callee.now));
        assert.equal(res.status, 200, JSON.stringify(res.body));
        assert.ok(checkSignedHello({ hello: res.body.hello, signature: res.body.signature }, { self: alice.address, now: callee.now }));
      };
      const first = callee.now;
      await send();
      callee.now += 30_000;
      await send();
      assert.equal((await callee.peers.get(alice.address))?.lastSeen, first, 'not written again within 60 s');
      callee.now += 30_000;
      await send();
      assert.equal((await callee.peers.get(alice.address))?.lastSeen, callee.now);
    } finally {
      await callee.close();
    }
  });

  it('pure: the token bucket refills at the given rate up to the burst; remembered onions stay bounded', () => {
    const t = new HelloThrottle({ newPeersPerMinute: 60, newPeerBurst: 2, remembered: 2 });
    t.admitNewPeer(0);
    t.admitNewPeer(0);
    assert.throws(() => t.admitNewPeer(500), (e: unknown) => e instanceof P2pdbError && e.code === 'rate_limited' && e.status === 429);
    t.admitNewPeer(1_000);
    t.admitNewPeer(1_000_000); // an hour idle refills to the burst, not beyond
    t.admitNewPeer(1_000_000);
    assert.throws(() => t.admitNewPeer(1_000_000));
    t.written('a', 'd', 0);
    t.written('b', 'd', 0);
    t.written('c', 'd', 0);
    assert.deepEqual(['a', 'b', 'c'].map((o) => t.recentlyWritten(o, 'd', 1)), [false, true, true], 'least recently written forgotten');
    assert.equal(t.recentlyWritten('b', 'other description', 1), false);
  });
});

describe(onBackend('GET /hello/ peers and ?tables='), () => {
  let node: HelloNode;
  const all = newIdentity();
  const one = newIdentity();
  const both = newIdentity();
  const two = newIdentity();
  const unverified = newIdentity();
  const helloOnly = newIdentity();
  const failing = newIdentity();

  before(async () => {
    node = await startHelloNode({ limits: { failingAfter: 2 } });
    const self = node.identity!.address;
    const t = node.now;
    // Reached by us: said hello, then answered our own hello (recordContact, as peering.ts does).
    const reached = async (id: OnionIdentity, tables: HelloMessage['tables'], at: number) => {
      await node.peers.recordInboundHello(helloFrom(id, self, t, { tables }), at);
      await node.peers.recordContact(helloFrom(id, self, at, { tables }), at, at + 600_000);
    };
    await reached(all, '*', t - 4);
    await reached(one, [T1], t - 3);
    await reached(both, [T1, T2], t - 2);
    await reached(two, [T2], t - 1);
    await node.peers.addCandidates([{ onion: unverified.address, tables: '*', pow_bits: 12 }], t);
    // Proved its key by saying hello, the most recent of all, but never reached by us.
    await node.peers.recordInboundHello(helloFrom(helloOnly, self, t, { tables: '*' }), t);
    await reached(failing, '*', t);
    for (let i = 0; i < 2; i++) await node.peers.recordFailure(failing.address, t, () => t + 1000);
  });
  after(() => node.close());

  const onions = (res: { body: { peers: PeerSummary[] } }) => res.body.peers.map((p) => p.onion);

  it('lists peers we reached, whose latest dial succeeded, only; most recently seen first', async () => {
    assert.deepEqual(onions(await getHello(node.url)), [two.address, both.address, one.address, all.address]);
  });

  it("keeps peers that carry every asked table; '*' carries all", async () => {
    assert.deepEqual(onions(await getHello(node.url, `?tables=${T1}`)), [both.address, one.address, all.address]);
    assert.deepEqual(onions(await getHello(node.url, `?tables=${T2},${T1}`)), [both.address, all.address]);
    assert.deepEqual(onions(await getHello(node.url, `?tables=${T3}`)), [all.address]);
    assert.deepEqual(onions(await getHello(node.url, `?tables=${T2.toUpperCase()}`)), [two.address, both.address, all.address], 'hex is case-insensitive in the query');
  });

  it('answers 400 bad_request for malformed fingerprints', async () => {
    for (const q of ['?tables=', '?tables=abc', `?tables=${T1},`, `?tables=${T1}&tables=${T2}`, '?tables=*', `?tables=${'g'.repeat(64)}`]) {
      const res = await getHello(node.url, q);
      assert.equal(res.status, 400, q);
      assert.equal(res.body.error.code, 'bad_request', q);
    }
  });
});

// --- the peer table: bound, ageing, trust ---

describe(onBackend('peer table'), () => {
  let store: Awaited<ReturnType<typeof openPeerTable>>;
  const self = newIdentity();
  let t = 1_767_225_600_000;

  before(async () => {
    // Opened alone: the store migrates a fresh database itself (as the CLI does).
    store = await openPeerTable(await freshDatabase(tempDir('p2pdb-peers-')), { self: self.address, limits: { maxPeers: 5, staleAfterMs: 1000, failingAfter: 2 } });
  });
  after(() => store.close());

  const inbound = (id: OnionIdentity, at: number, tables: HelloMessage['tables'] = '*') => store.recordInboundHello(helloFrom(id, self.address, at, { tables }), at);
  const has = async (id: OnionIdentity) => (await store.get(id.address)) !== undefined;

  it('stays bounded: unverified and failing peers make room first, operator peers never go', async () => {
    const manual = newIdentity();
    const [v1, v2] = [newIdentity(), newIdentity()];
    const [l1, l2, l3] = [newIdentity(), newIdentity(), newIdentity()];
    assert.equal(await store.add(manual.address, 'manual', t++), 'added');
    await inbound(v1, t++);
    await inbound(v2, t++);
    assert.equal(await store.addCandidates([{ onion: l1.address, tables: null, pow_bits: null }], t++), 1);
    assert.equal(await store.addCandidates([{ onion: l2.address, tables: '*', pow_bits: 3 }], t++), 1);
    assert.equal(await store.count(), 5);

    // Full: a new candidate pushes out the oldest unverified one.
    assert.equal(await store.addCandidates([{ onion: l3.address, tables: null, pow_bits: null }], t++), 1);
    assert.equal(await store.count(), 5);
    assert.equal(await has(l1), false);
    assert.ok((await has(l2)) && (await has(l3)));

    // A failing verified peer goes before healthy ones.
    await store.recordFailure(v1.address, t, () => t);
    await store.recordFailure(v1.address, t, () => t);
    const v3 = newIdentity();
    await inbound(v3, t++); // drops an unverified one (l2, the oldest)
    await inbound(newIdentity(), t++); // drops l3
    assert.equal(await has(l2), false);
    assert.equal(await has(l3), false);
    const v5 = newIdentity();
    await inbound(v5, t++); // no unverified left: drops failing v1
    assert.equal(await has(v1), false);
    assert.equal(await store.count(), 5);

    // Only healthy verified and manual peers left: neither a candidate nor a new sender of a
    // valid hello (keys are free to make) may push them out...
    assert.equal(await store.addCandidates([{ onion: newIdentity().address, tables: '*', pow_bits: 1 }], t++), 0);
    const newcomer = newIdentity();
    assert.equal(await inbound(newcomer, t++), false);
    assert.equal(await has(newcomer), false);
    assert.equal(await has(v2), true);
    // ...but the operator's peer goes in, replacing the least recently seen verified one (v2).
    const added = newIdentity();
    assert.equal(await store.add(added.address, 'manual', t++), 'added');
    assert.equal(await has(v2), false);
    assert.equal(await has(manual), true);
    assert.equal(await store.count(), 5);
  });

  it('ages out unverified and failing peers, keeps healthy and operator peers', async () => {
    for (const p of await store.list()) await store.remove(p.onion);
    const healthy = newIdentity();
    const failing = newIdentity();
    const candidate = newIdentity();
    const fresh = newIdentity();
    const configured = newIdentity();
    await store.add(configured.address, 'config', t);
    await inbound(healthy, t);
    await inbound(failing, t);
    await store.recordFailure(failing.address, t, () => t);
    await store.recordFailure(failing.address, t, () => t);
    await store.addCandidates([{ onion: candidate.address, tables: null, pow_bits: null }], t);
    await store.addCandidates([{ onion: fresh.address, tables: null, pow_bits: null }], t + 900);
    assert.equal(await store.prune(t + 1000), 0, 'nothing is older than staleAfterMs yet');
    assert.equal(await store.prune(t + 1001), 2);
    assert.equal(await has(candidate), false);
    assert.equal(await has(failing), false);
    assert.ok((await has(healthy)) && (await has(fresh)) && (await has(configured)));
    t += 2000;
  });

  it('treats peer lists as claims: unknown peers only, unverified, never overwriting; never itself', async () => {
    const known = newIdentity();
    await inbound(known, t, [T1]);
    const added = await store.addCandidates(
      [
        { onion: known.address, tables: '*', pow_bits: 1 },
        { onion: self.address, tables: '*', pow_bits: 1 },
      ],
      t,
    );
    assert.equal(added, 0);
    const k = await store.get(known.address);
    assert.deepEqual(k?.tables, [T1]);
    assert.equal(k?.verified, true);
    assert.equal(await store.get(self.address), undefined);
    assert.equal(await store.add(self.address, 'manual', t), 'self');
    await assert.rejects(store.recordInboundHello(helloFrom(self, self.address, t), t), isCode('hello_self'));
  });
});

// --- pure parts ---

describe('pure parts', () => {
  it('backoff: refresh on success, doubling from retryBase, capped, jittered within ±jitter', () => {
    const s = { refreshMs: 600_000, retryBaseMs: 30_000, maxBackoffMs: 3_600_000, jitter: 0.2 };
    assert.deepEqual([0, 1, 2, 3, 4, 7, 8, 1000].map((n) => baseDelayMs(n, s)), [600_000, 30_000, 60_000, 120_000, 240_000, 1_920_000, 3_600_000, 3_600_000]);
    assert.equal(withJitter(1000, 0.2, () => 0), 800);
    assert.equal(withJitter(1000, 0.2, () => 0.5), 1000);
    assert.ok(withJitter(1000, 0.2, () => 0.999999) <= 1200);
    assert.equal(nextAttemptAt(5, 2, DEFAULT_SCHEDULE, () => 0.5), 5 + 2 * DEFAULT_SCHEDULE.retryBaseMs);
  });

  it('table filters and peer claims', () => {
    assert.equal(carriesTables('*', [T1, T2]), true);
    assert.equal(carriesTables([T1], [T1, T2]), false);
    assert.equal(carriesTables(null, [T1]), false);
    assert.deepEqual(parseTablesQuery(`${T2},${T1},${T2}`), [T1, T2]);
    assert.equal(parseTablesQuery(undefined), undefined);
    assert.throws(() => parseTablesQuery(Array.from({ length: 201 }, () => T1).join(',')), isCode('bad_request'));
    const peers: PeerSummary[] = Array.from({ length: 150 }, (_, i) => ({ onion: newIdentity().address, tables: '*', pow_bits: 1, last_seen: i }));
    const shown = selectPeers(peers, undefined);
    assert.equal(shown.length, 100);
    assert.equal(shown[0]!.last_seen, 149);

    const a = newIdentity().address;
    const b = newIdentity().address;
    const claims = readPeerClaims(
      [
        { onion: a, tables: [T1], pow_bits: 12, last_seen: 1 },
        { onion: a, tables: '*' },
        { onion: b, tables: ['nope'], pow_bits: 'x' },
        { onion: 'example.com' },
        null,
        'x',
      ],
      new Set([b]),
    );
    assert.deepEqual(claims, [{ onion: a, tables: [T1], pow_bits: 12 }]);
    assert.deepEqual(readPeerClaims([{ onion: b, tables: ['nope'], pow_bits: 'x' }], new Set()), [{ onion: b, tables: null, pow_bits: null }]);
    assert.deepEqual(readPeerClaims({ not: 'a list' }, new Set()), []);
  });
});

// --- the peer client and the loop without Tor: nothing is ever dialed directly ---

describe('peer client and peering with a closed SOCKS port', () => {
  let local: http.Server;
  let contacts = 0;

  before(async () => {
    local = http.createServer((_req, res) => res.end('{}'));
    local.on('connection', () => contacts++);
    await new Promise<void>((resolve) => local.listen(0, '127.0.0.1', resolve));
  });
  after(() => new Promise<void>((resolve) => local.close(() => resolve())));

  it('needs the SOCKS agent and onion URLs; with the SOCKS port closed the request fails with ECONNREFUSED', async () => {
    assert.throws(() => new PeerClient({ agent: new http.Agent() }), isCode('config_invalid'));
    const closed = await freePort();
    const agent = peerAgent(closed);
    try {
      const client = new PeerClient({ agent, timeoutMs: 10_000 });
      const port = (local.address() as AddressInfo).port;
      await assert.rejects(client.request(`127.0.0.1:${port}`, '/hello/'), isCode('not_onion_url'));
      await assert.rejects(client.request('localhost', '/hello/'), isCode('not_onion_url'));
      await assert.rejects(client.getHello(newIdentity().address), (err: unknown) => {
        assert.ok(isCode('peer_unreachable')(err), String(err));
        assert.match((err as Error).message, new RegExp(`ECONNREFUSED.*127\\.0\\.0\\.1:${closed}`));
        return true;
      });
      assert.equal(contacts, 0, 'the local server was never contacted');
    } finally {
      agent.destroy();
    }
  });

  it('the loop records failures and backs off; sayHelloNow fails the same way', async () => {
    const me = newIdentity();
    const store = await openPeerTable(await freshDatabase(tempDir('p2pdb-peering-')), { self: me.address });
    const agent = peerAgent(await freePort());
    const target = newIdentity().address;
    let now = 1_767_225_600_000;
    let clockReads = 0;
    const peering = await startPeering({
      identity: me,
      peerStore: store,
      nodeInfo: info(),
      agent,
      bootstrapPeers: [`http://${target}/`],
      clock: () => (clockReads++, now),
      intervalMs: 50,
      random: () => 0.5,
      schedule: { retryBaseMs: 10_000, maxBackoffMs: 40_000 },
    });
    try {
      const first = await waitFor(async () => {
        const p = await store.get(target);
        return p && p.failures >= 1 ? p : undefined;
      }, { timeoutMs: 10_000, what: 'the first failed hello' });
      assert.equal(first.source, 'config');
      assert.equal(first.verified, false);
      assert.equal(first.nextAttempt, first.lastAttempt! + 10_000, 'first retry after retryBaseMs');
      // The clock has not moved: the loop keeps ticking (each tick reads the clock) but must not retry before the backoff.
      const readsNow = clockReads;
      await waitFor(() => clockReads >= readsNow + 20, { timeoutMs: 10_000, what: 'ten more ticks' });
      assert.equal((await store.get(target))!.failures, 1);
      now += 10_000;
      const second = await waitFor(async () => {
        const p = await store.get(target);
        return p && p.failures >= 2 ? p : undefined;
      }, { timeoutMs: 10_000, what: 'the retry' });
      assert.equal(second.nextAttempt, now + 20_000, 'the delay doubles');
      await assert.rejects(peering.sayHelloNow(target), isCode('peer_unreachable'));
      assert.equal((await store.get(target))!.failures, 3);
      await assert.rejects(peering.sayHelloNow(me.address), isCode('hello_self'));
      assert.equal(contacts, 0);
    } finally {
      await peering.stop();
      agent.destroy();
      await store.close();
    }
  });
});

// --- the CLI ---

describe('p2pdb peers', () => {
  const home = tempDir('p2pdb-cli-home-');
  function io(env: NodeJS.ProcessEnv = {}): CliIo & { out: () => string; err: () => string } {
    let out = '';
    let err = '';
    const sink = (f: (s: string) => void) => ({ write: (c: string | Buffer) => (f(String(c)), true) }) as unknown as NodeJS.WritableStream;
    return {
      stdout: sink((s) => (out += s)),
      stderr: sink((s) => (err += s)),
      stdin: process.stdin,
      env,
      homedir: home,
      fetch: globalThis.fetch,
      stopSignal: () => new Promise(() => {}),
      out: () => out,
      err: () => err,
    };
  }

  it('adds, lists and removes peers in the data directory; a node-verified peer shows as verified', async () => {
    const data = tempDir('p2pdb-cli-peers-');
    const a = newIdentity();
    const b = newIdentity();
    let c = io();
    assert.equal(await run(['peers', 'list', '--data', data], c), 0);
    assert.match(c.err(), /no peers/);
    assert.equal(existsSync(path.join(data, 'p2pdb.sqlite')), false, 'listing creates no database');

    assert.equal(await run(['peers', 'add', `http://${a.address}/`, '--data', data], (c = io())), 0);
    assert.match(c.out(), new RegExp(`added ${a.address}`));
    assert.equal(await run(['peers', 'add', 'nothing.onion', '--data', data], (c = io())), 1);
    assert.match(c.err(), /\[malformed\]/);

    // The node verifies b meanwhile (same file, its own connection).
    const self = newIdentity();
    const store = await openPeerTable({ kind: 'sqlite', filename: path.join(data, 'p2pdb.sqlite') }, { self: self.address });
    await store.recordInboundHello(helloFrom(b, self.address, 1_767_225_600_000, { tables: [T1, T2] }), 1_767_225_600_000);
    await store.close();

    assert.equal(await run(['peers', 'list'], (c = io({ P2PDB_DATA: data }))), 0);
    const lines = c.out().trim().split('\n');
    assert.match(lines[0]!, /^ONION\s+TABLES\s+VERIFIED\s+LAST_SEEN\s+FAILURES\s+SOURCE$/);
    assert.ok(lines.some((l) => l.startsWith(b.address) && /\s2 tables\s+yes\s+2026-01-01T00:00:00Z\s+0\s+hello$/.test(l)), c.out());
    assert.ok(lines.some((l) => l.startsWith(a.address) && /\s\?\s+no\s+-\s+0\s+manual$/.test(l)), c.out());

    assert.equal(await run(['peers', 'remove', a.address, '--data', data], (c = io())), 0);
    assert.equal(await run(['peers', 'remove', a.address, '--data', data], (c = io())), 1);
    assert.match(c.err(), /\[not_found\]/);
    assert.equal(await run(['peers', 'frobnicate'], (c = io())), 2);
  });
});
