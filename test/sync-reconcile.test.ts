/**
 * Reconciliation (src/sync/reconcile.ts) as property tests over in-memory views: random sets
 * from a seeded PRNG, run to the end against answerSync, and the results must be exactly the
 * set differences. Plus strict decoding under fuzzing, and the protocol's byte and round-trip
 * figures on a 1 M-id set (counts of bytes and messages, not timings).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { isP2pdbError } from '../src/errors.js';
import { decodeReply, decodeRequest, encodeRequest } from '../src/sync/codec.js';
import { EMPTY_FINGERPRINT, fingerprintOfIds } from '../src/sync/fingerprint.js';
import { MemoryIds } from '../src/sync/memory-ids.js';
import { idHasPrefix, prefixRange } from '../src/sync/prefix.js';
import { answerSync, Reconciliation, type ReconcileTuning, type SyncScope } from '../src/sync/reconcile.js';
import { sumOfIds } from '../src/sync/sum256.js';
import { prng } from './helpers/prng.js';


/** n pseudo-random 32-byte ids (slices of one buffer). */
function randomIds(rand: () => number, n: number): Buffer[] {
  const all = Buffer.allocUnsafe(n * 32);
  for (let i = 0; i < all.length; i += 4) all.writeUInt32BE(Math.floor(rand() * 4294967296), i);
  return Array.from({ length: n }, (_, i) => all.subarray(i * 32, i * 32 + 32));
}

type Sets = Map<string, Buffer[]>; // table hex → ids
const hex = (b: Buffer) => b.toString('hex');
const tableOf = (h: string) => Buffer.from(h, 'hex');

function memory(sets: Sets): MemoryIds {
  const m = new MemoryIds();
  for (const [t, ids] of sets) m.addMany(tableOf(t), ids);
  return m;
}

const everything: SyncScope = { mirrors: () => true };
function only(tables: string[]): SyncScope {
  const s = new Set(tables);
  return { mirrors: (t) => s.has(hex(t)) };
}

interface Run {
  rec: Reconciliation;
  messages: { request: Uint8Array; reply: Uint8Array }[];
}

async function reconcile(
  client: Sets,
  server: Sets,
  o: {
    tables?: string[];
    allTables?: boolean;
    clientScope?: SyncScope;
    serverScope?: SyncScope;
    maxRounds?: number;
    tuning?: Partial<ReconcileTuning>;
  } = {},
): Promise<Run> {
  const cv = memory(client).view();
  const sv = memory(server).view();
  const rec = new Reconciliation(cv, {
    tables: (o.tables ?? [...client.keys()]).map(tableOf),
    allTables: o.allTables ?? false,
    scope: o.clientScope ?? everything,
    ...(o.tuning ? { tuning: o.tuning } : {}),
  });
  const messages: Run['messages'] = [];
  let msg: Uint8Array | null = await rec.first();
  while (msg) {
    const reply = await answerSync(sv, msg, o.serverScope ?? everything);
    messages.push({ request: msg, reply });
    msg = await rec.next(reply);
    assert.ok(messages.length <= (o.maxRounds ?? 100), 'reconciliation does not end');
  }
  return { rec, messages };
}

function keyset(ids: Iterable<Buffer>): Set<string> {
  const s = new Set<string>();
  for (const id of ids) s.add(hex(id));
  return s;
}

/** need/give plus ranges expanded against the holder's set must be exactly the differences. */
function checkExact(run: Run, client: Sets, server: Sets, o: { tables: string[]; refused: string[]; extra: string[] }): void {
  const { rec } = run;
  const expectNeed = new Set<string>();
  const expectGive = new Set<string>();
  for (const t of o.tables) {
    if (o.refused.includes(t)) continue;
    const a = keyset(client.get(t) ?? []);
    const b = keyset(server.get(t) ?? []);
    for (const id of b) if (!a.has(id)) expectNeed.add(`${t}/${id}`);
    for (const id of a) if (!b.has(id)) expectGive.add(`${t}/${id}`);
  }
  for (const t of o.extra) for (const id of server.get(t) ?? []) expectNeed.add(`${t}/${hex(id)}`);

  const got = (ids: Buffer[], ranges: { table: Buffer; prefix: string; count: number }[], holder: Sets, other: Sets, what: string) => {
    const out: string[] = [];
    // Explicit ids carry no table: attribute each to the one table holding it (ids are unique here).
    const owner = new Map<string, string>();
    for (const [t, list] of holder) for (const id of list) owner.set(hex(id), t);
    for (const id of ids) {
      const t = owner.get(hex(id));
      assert.ok(t, `${what}: an id the holder does not have`);
      out.push(`${t}/${hex(id)}`);
    }
    for (const r of ranges) {
      const t = hex(r.table);
      const inRange = (holder.get(t) ?? []).filter((id) => idHasPrefix(id, r.prefix));
      assert.equal(r.count, inRange.length, `${what}: range ${t}/${r.prefix} count`);
      assert.equal((other.get(t) ?? []).filter((id) => idHasPrefix(id, r.prefix)).length, 0, `${what}: the other side holds part of a range`);
      for (const id of inRange) out.push(`${t}/${hex(id)}`);
    }
    assert.equal(new Set(out).size, out.length, `${what}: something reported twice`);
    return new Set(out);
  };
  assert.deepEqual(got(rec.need, rec.needRanges, server, client, 'need'), expectNeed);
  assert.deepEqual(got(rec.give, rec.giveRanges, client, server, 'give'), expectGive);
  assert.deepEqual(rec.refusedTables.map(hex).sort(), [...o.refused].sort());
}

/** Random sets for a case: per table, shared / client-only / server-only ids. */
function makeCase(rand: () => number, tables: { shared: number; clientOnly: number; serverOnly: number }[]) {
  const client: Sets = new Map();
  const server: Sets = new Map();
  const names: string[] = [];
  for (const t of tables) {
    const name = hex(randomIds(rand, 1)[0]!);
    names.push(name);
    const shared = randomIds(rand, t.shared);
    const c = [...shared, ...randomIds(rand, t.clientOnly)];
    const s = [...shared, ...randomIds(rand, t.serverOnly)];
    if (c.length > 0) client.set(name, c);
    if (s.length > 0) server.set(name, s);
  }
  return { client, server, names };
}

describe('reconciliation finds exactly the set differences', () => {
  const shapes: [string, { shared: number; clientOnly: number; serverOnly: number }][] = [
    ['equal sets', { shared: 3000, clientOnly: 0, serverOnly: 0 }],
    ['disjoint sets', { shared: 0, clientOnly: 700, serverOnly: 900 }],
    ['empty client', { shared: 0, clientOnly: 0, serverOnly: 2500 }],
    ['empty server', { shared: 0, clientOnly: 2500, serverOnly: 0 }],
    ['both empty', { shared: 0, clientOnly: 0, serverOnly: 0 }],
    ['client a subset', { shared: 4000, clientOnly: 0, serverOnly: 37 }],
    ['server a subset', { shared: 4000, clientOnly: 41, serverOnly: 0 }],
    ['d = 1', { shared: 20000, clientOnly: 0, serverOnly: 1 }],
    ['small d both ways', { shared: 20000, clientOnly: 3, serverOnly: 4 }],
    ['large d', { shared: 5000, clientOnly: 3000, serverOnly: 4000 }],
    ['tiny sets', { shared: 2, clientOnly: 1, serverOnly: 1 }],
  ];
  for (const [name, shape] of shapes) {
    test(name, async () => {
      const { client, server, names } = makeCase(prng(name.length * 7919), [shape]);
      const run = await reconcile(client, server, { tables: names });
      checkExact(run, client, server, { tables: names, refused: [], extra: [] });
      if (name === 'equal sets' || name === 'both empty') assert.equal(run.rec.stats.roundTrips, 1);
    });
  }

  test('random cases over several tables, refused tables and allTables discovery (200 seeds)', async () => {
    for (let seed = 1; seed <= 200; seed++) {
      const rand = prng(seed);
      const size = () => Math.floor(rand() ** 3 * [10, 300, 3000][seed % 3]!);
      const shapes = Array.from({ length: 1 + Math.floor(rand() * 4) }, () => ({ shared: size(), clientOnly: size(), serverOnly: size() }));
      const { client, server, names } = makeCase(rand, shapes);
      const refused = names.filter(() => rand() < 0.2);
      const serverScope: SyncScope = { mirrors: (t) => !refused.includes(hex(t)) };
      // Tables the client does not list: with allTables the server names those it has (and mirrors).
      const allTables = rand() < 0.5;
      const listed = names.filter(() => rand() < 0.8);
      const unlisted = names.filter((n) => !listed.includes(n));
      const extra = allTables ? unlisted.filter((t) => !refused.includes(t) && (server.get(t)?.length ?? 0) > 0) : [];
      // The client only reports about what it listed; drop unlisted tables from its sets for the check.
      const clientListed: Sets = new Map([...client].filter(([t]) => listed.includes(t)));
      const run = await reconcile(clientListed, server, { tables: listed, allTables, serverScope });
      try {
        checkExact(run, clientListed, server, { tables: listed, refused: refused.filter((t) => listed.includes(t)), extra });
      } catch (err) {
        (err as Error).message = `seed ${seed}: ${(err as Error).message}`;
        throw err;
      }
    }
  });

  test('a client scope refuses extra tables it does not mirror', async () => {
    const { client, server, names } = makeCase(prng(5), [
      { shared: 10, clientOnly: 0, serverOnly: 3 },
      { shared: 0, clientOnly: 0, serverOnly: 50 },
      { shared: 0, clientOnly: 0, serverOnly: 60 },
    ]);
    const listed = [names[0]!];
    const run = await reconcile(new Map([[names[0]!, client.get(names[0]!)!]]), server, {
      tables: listed,
      allTables: true,
      clientScope: only([names[0]!, names[2]!]),
    });
    checkExact(run, new Map([[names[0]!, client.get(names[0]!)!]]), server, { tables: listed, refused: [], extra: [names[2]!] });
  });

  test('an empty node mirroring everything bootstraps by ranges, never enumerating ids', async () => {
    const { server, names } = makeCase(prng(9), [
      { shared: 0, clientOnly: 0, serverOnly: 5000 },
      { shared: 0, clientOnly: 0, serverOnly: 7 },
    ]);
    const run = await reconcile(new Map(), server, { tables: [], allTables: true });
    assert.equal(run.rec.stats.roundTrips, 1);
    assert.equal(run.rec.need.length, 0);
    assert.deepEqual(
      run.rec.needRanges.map((r) => [hex(r.table), r.prefix, r.count]).sort(),
      names.map((t) => [t, '', server.get(t)!.length]).sort(),
    );
  });

  test('a large difference is spread over several rounds of bounded messages', async () => {
    const { client, server, names } = makeCase(prng(11), [{ shared: 0, clientOnly: 10_000, serverOnly: 80_000 }]);
    // Requests near the size limit, so the server's answers overflow and it must defer items.
    const run = await reconcile(client, server, { tables: names, tuning: { requestBudget: 250 * 1024 } });
    checkExact(run, client, server, { tables: names, refused: [], extra: [] });
    let deferred = 0;
    for (const m of run.messages) {
      assert.ok(m.request.length <= 256 * 1024 && m.reply.length <= 256 * 1024);
      const asked = decodeRequest(m.request).tables.map((t) => t.items.length);
      for (const s of decodeReply(m.reply).sections) if (s.kind === 'table' && s.answered < asked[s.index]!) deferred++;
    }
    assert.ok(deferred > 0, 'the server never had to defer items: the case is too small to test spreading');
  });
});

describe('the protocol figures for one table of 1,000,000 ids', () => {
  const rand = prng(20261125);
  const shared = randomIds(rand, 1_000_000);
  const table = randomIds(rand, 1)[0]!;

  async function run(clientExtra: Buffer[], serverExtra: Buffer[]) {
    const c = new MemoryIds();
    const s = new MemoryIds();
    c.addMany(table, [...shared, ...clientExtra]);
    s.addMany(table, [...shared, ...serverExtra]);
    const rec = new Reconciliation(c.view(), { tables: [table], allTables: false, scope: everything });
    let msg: Uint8Array | null = await rec.first();
    while (msg) msg = await rec.next(await answerSync(s.view(), msg, everything));
    return rec;
  }

  test('d = 0: one round trip, under 300 bytes', async () => {
    const rec = await run([], []);
    const bytes = rec.stats.bytesSent + rec.stats.bytesReceived;
    assert.equal(rec.stats.roundTrips, 1);
    assert.ok(bytes < 300, `${bytes} bytes`);
    assert.equal(rec.need.length + rec.give.length + rec.needRanges.length + rec.giveRanges.length, 0);
  });

  test('d = 1: at most 3 round trips, under 2,000 bytes, either side missing the id', async () => {
    const extras = randomIds(prng(77), 8);
    for (let i = 0; i < extras.length; i++) {
      const serverHasIt = i % 2 === 0;
      const rec = await run(serverHasIt ? [] : [extras[i]!], serverHasIt ? [extras[i]!] : []);
      const bytes = rec.stats.bytesSent + rec.stats.bytesReceived;
      assert.ok(rec.stats.roundTrips <= 3, `${rec.stats.roundTrips} round trips`);
      assert.ok(bytes < 2000, `${bytes} bytes`);
      assert.deepEqual(serverHasIt ? rec.need : rec.give, [extras[i]!]);
      assert.equal((serverHasIt ? rec.give : rec.need).length, 0);
    }
  });
});

describe('strict decoding', () => {
  async function sampleMessages(): Promise<{ requests: Uint8Array[]; replies: Uint8Array[]; client: Sets; server: Sets; names: string[] }> {
    const { client, server, names } = makeCase(prng(3), [
      { shared: 300, clientOnly: 20, serverOnly: 30 },
      { shared: 0, clientOnly: 5, serverOnly: 0 },
      { shared: 40, clientOnly: 0, serverOnly: 2 },
    ]);
    const run = await reconcile(client, server, { tables: names, allTables: true });
    return { requests: run.messages.map((m) => m.request), replies: run.messages.map((m) => m.reply), client, server, names };
  }

  function mutate(rand: () => number, msg: Uint8Array): Buffer {
    const b = Buffer.from(msg);
    switch (Math.floor(rand() * 5)) {
      case 0: // flip bytes
        for (let k = 0; k < 1 + rand() * 3; k++) b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256);
        return b;
      case 1: // truncate
        return b.subarray(0, Math.floor(rand() * b.length));
      case 2: // append
        return Buffer.concat([b, Buffer.from([Math.floor(rand() * 256)])]);
      case 3: // delete a byte
        {
          const at = Math.floor(rand() * b.length);
          return Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
        }
      default: // set a byte to an extreme
        b[Math.floor(rand() * b.length)] = rand() < 0.5 ? 0xff : 0x00;
        return b;
    }
  }

  test('4,000 mutated requests and replies: sync_malformed or a valid answer, never a crash', async () => {
    const s = await sampleMessages();
    const sv = memory(s.server).view();
    const rand = prng(99);
    let rejected = 0;
    for (let i = 0; i < 2000; i++) {
      const req = mutate(rand, s.requests[i % s.requests.length]!);
      try {
        const reply = await answerSync(sv, req, everything);
        decodeReply(reply); // whatever it accepted, it answers with a valid reply
      } catch (err) {
        assert.ok(isP2pdbError(err) && err.code === 'sync_malformed', `request ${i}: ${String(err)}`);
        rejected++;
      }
    }
    for (let i = 0; i < 2000; i++) {
      // Replay the client up to the round whose reply gets mutated.
      const round = i % s.replies.length;
      const cv = memory(s.client).view();
      const rec = new Reconciliation(cv, { tables: s.names.map(tableOf), allTables: true, scope: everything });
      let msg: Uint8Array | null = await rec.first();
      for (let r = 0; r < round && msg; r++) msg = await rec.next(await answerSync(memory(s.server).view(), msg, everything));
      if (!msg) continue;
      const good = await answerSync(sv, msg, everything);
      try {
        let next = await rec.next(mutate(rand, good));
        for (let r = 0; next && r < 50; r++) next = await rec.next(await answerSync(sv, next, everything));
      } catch (err) {
        assert.ok(isP2pdbError(err) && err.code === 'sync_malformed', `reply ${i}: ${String(err)}`);
        rejected++;
      }
    }
    assert.ok(rejected > 1000, `only ${rejected} of 4,000 mutations were rejected`);
  });

  test('limits and versions', () => {
    const ok = encodeRequest({ allTables: false, tables: [{ table: Buffer.alloc(32, 1), items: [{ kind: 'none', prefix: 'ab' }] }] });
    assert.deepEqual(decodeRequest(ok).tables[0]!.items, [{ kind: 'none', prefix: 'ab' }]);
    const bad = (b: Buffer, why: string) =>
      assert.throws(() => decodeRequest(b), (e: unknown) => isP2pdbError(e) && e.code === 'sync_malformed', why);
    bad(Buffer.concat([Buffer.from([2]), ok.subarray(1)]), 'unknown version');
    bad(Buffer.concat([ok.subarray(0, 2), Buffer.from([2]), ok.subarray(3)]), 'unknown flag');
    bad(Buffer.concat([ok, Buffer.from([0])]), 'trailing byte');
    bad(Buffer.alloc(256 * 1024 + 1, 1), 'too large');
    // a prefix of 65 nibbles
    bad(Buffer.concat([ok.subarray(0, 4 + 32 + 1), Buffer.from([4, 65]), Buffer.alloc(33)]), 'deep prefix');
    // an id list longer than the limit
    const longList = encodeRequest({
      allTables: false,
      tables: [{ table: Buffer.alloc(32), items: [{ kind: 'ids', prefix: '', ids: randomIds(prng(1), 65).sort(Buffer.compare) }] }],
    });
    bad(longList, 'too many ids');
    // unsorted ids
    const ids = randomIds(prng(2), 2).sort(Buffer.compare).reverse();
    bad(encodeRequest({ allTables: false, tables: [{ table: Buffer.alloc(32), items: [{ kind: 'ids', prefix: '', ids }] }] }), 'unsorted');
    // non-minimal varint for the table count
    bad(Buffer.from([1, 1, 0, 0x80, 0x00]), 'overlong varint');
  });

  test('counts: 2^48 is the largest a message may carry (docs/PROTOCOL.md §9.5), in requests and replies', () => {
    const summary = (count: number) =>
      encodeRequest({ allTables: false, tables: [{ table: Buffer.alloc(32, 2), items: [{ kind: 'summary', prefix: '', count, fingerprint: Buffer.alloc(16, 3) }] }] });
    const item = decodeRequest(summary(2 ** 48)).tables[0]!.items[0]!;
    assert.equal(item.kind === 'summary' && item.count, 2 ** 48);
    assert.throws(() => decodeRequest(summary(2 ** 48 + 1)), (e: unknown) => isP2pdbError(e) && e.code === 'sync_malformed');
    const extra = (count: number) => {
      // version, reply, 1 section, EXTRA, a table, its count
      const w = [1, 2, 1, 3, ...Buffer.alloc(32, 4)];
      for (let n = count; ; n = Math.floor(n / 128)) {
        const low = n % 128;
        if (n < 128) { w.push(low); break; }
        w.push(low | 0x80);
      }
      return Buffer.from(w);
    };
    const s = decodeReply(extra(2 ** 48)).sections[0]!;
    assert.equal(s.kind === 'extra' && s.count, 2 ** 48);
    assert.throws(() => decodeReply(extra(2 ** 48 + 1)), (e: unknown) => isP2pdbError(e) && e.code === 'sync_malformed');
  });
});

describe('docs/PROTOCOL.md §9 test vectors', () => {
  const doc = readFileSync(new URL('../../docs/PROTOCOL.md', import.meta.url), 'utf8');
  const blocks = [...doc.matchAll(/^```json sync-vectors[ \t]*\r?\n([\s\S]*?)^```[ \t]*$/gm)];

  test('the fingerprints and the encoded first request match the code', async () => {
    assert.equal(blocks.length, 1, 'exactly one ```json sync-vectors block');
    const v = JSON.parse(blocks[0]![1]!) as {
      empty_fingerprint: string;
      table: string;
      ids: string[];
      sum: string;
      fingerprint: string;
      first_request_hex: string;
      range: { prefix: string; lo: string; hi: string };
    };
    const ids = v.ids.map((h) => Buffer.from(h, 'hex'));
    assert.equal(hex(EMPTY_FINGERPRINT), v.empty_fingerprint);
    assert.equal(hex(sumOfIds(ids)), v.sum);
    assert.equal(hex(fingerprintOfIds(ids)), v.fingerprint);
    const m = new MemoryIds();
    for (const id of ids) m.add(tableOf(v.table), id);
    const rec = new Reconciliation(m.view(), { tables: [tableOf(v.table)], allTables: true, scope: everything });
    assert.equal(hex(Buffer.from(await rec.first())), v.first_request_hex);
    const r = prefixRange(v.range.prefix);
    assert.equal(hex(r.lo), v.range.lo);
    assert.equal(r.hi ? hex(r.hi) : null, v.range.hi);
  });
});
