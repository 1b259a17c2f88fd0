/**
 * The node over real HTTP on a loopback port, with a real SQLite file: the round trip,
 * every refusal with its code and status, and that refusals store nothing.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { connect } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openEnvelope } from '../src/crypto/envelope.js';
import { resolveConfig } from '../src/config/config.js';
import { startNode, type RunningNode } from '../src/node/node.js';
import { silentLogger } from '../src/util/log.js';
import { getJson, makeEntry, postJson, testKey, type TestKey } from './helpers/entries.js';
import { startTestNode } from './helpers/node.js';
import { onBackend, sqliteOnly } from './helpers/backend.js';
import { arrayItemSpans, maxEntryBytes } from '../src/ingest/parse-body.js';

let node: RunningNode;
let table: TestKey;
let alice: TestKey;
let bob: TestKey;

async function storedCount(): Promise<number> {
  return node.store.count();
}

/** Posts and checks the refusal: status, code, and that nothing was stored. */
async function expectRefusal(urlPath: string, body: unknown, status: number, code: string, contentType?: string) {
  const before = await storedCount();
  const res = await postJson(node.url + urlPath, body, contentType);
  assert.equal(res.status, status, JSON.stringify(res.body));
  assert.equal(res.body.error?.code, code, JSON.stringify(res.body));
  assert.equal(typeof res.body.error.message, 'string');
  assert.equal(await storedCount(), before, 'a refused entry must not be stored');
}

before(async () => {
  node = await startTestNode({ maxPayloadBytes: 4096, maxBatchEntries: 50 });
  table = testKey();
  alice = testKey();
  bob = testKey();
});
after(async () => {
  await node.close();
});

describe(onBackend('round trip'), () => {
  it('stores a put, serves it by /get/, and the recipient decrypts it', async () => {
    const made = await makeEntry({ table, to: alice, text: 'hello alice' });
    const put = await postJson(`${node.url}/put/${made.idHex}`, made.json);
    assert.equal(put.status, 201);
    assert.deepEqual(put.body, { status: 'stored', id: made.idHex });

    const got = await getJson(`${node.url}/get/?seconds_since=10000`);
    assert.equal(got.status, 200);
    const served = got.body.entries.find((e: { id: string }) => e.id === made.idHex);
    assert.ok(served, 'the entry is served');
    for (const k of ['v', 'table', 'to', 'created_at', 'payload', 'signature', 'proof'] as const) {
      assert.deepEqual(served[k], made.json[k], k);
    }
    assert.equal(typeof served.seq, 'string');
    assert.ok(Math.abs(served.received_at - Date.now()) < 60_000);
    const plain = openEnvelope(alice.privateKey, Buffer.from(served.payload, 'base64'));
    assert.equal(plain.toString('utf8'), 'hello alice');
    assert.throws(() => openEnvelope(bob.privateKey, Buffer.from(served.payload, 'base64')), { code: 'decrypt_failed' });
  });

  it('answers a repeated put with duplicate and stores it once', async () => {
    const made = await makeEntry({ table, to: alice, text: 'twice' });
    assert.equal((await postJson(`${node.url}/put/${made.idHex}`, made.json)).status, 201);
    const n = await storedCount();
    const again = await postJson(`${node.url}/put/${made.idHex}`, made.json);
    assert.equal(again.status, 200);
    assert.deepEqual(again.body, { status: 'duplicate', id: made.idHex });
    assert.equal(await storedCount(), n);
  });

  it("accepts the seed's form encoding with PEM keys", async () => {
    const made = await makeEntry({ table, to: alice, text: 'form-encoded' });
    const form = new URLSearchParams({
      table: table.publicPem,
      to: alice.publicPem,
      created_at: String(made.entry.createdAt),
      payload: made.json.payload,
      signature: made.json.signature,
      proof: made.json.proof,
    });
    const res = await postJson(`${node.url}/put/${made.idHex}`, form.toString(), 'application/x-www-form-urlencoded');
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const got = await getJson(`${node.url}/get/?ids=${made.idHex}`);
    assert.equal(got.body.entries.length, 1);
  });

  // On PostgreSQL the files are the server's; the store code that writes them is the same.
  it('never writes the plaintext to the database files', { skip: sqliteOnly }, async () => {
    const secret = 'the-plaintext-marker-' + Math.random().toString(36).slice(2);
    const made = await makeEntry({ table, to: alice, text: secret });
    assert.equal((await postJson(`${node.url}/put/${made.idHex}`, made.json)).status, 201);
    const dir = node.config.dataDir;
    const files = readdirSync(dir).filter((f) => f.startsWith('p2pdb.sqlite'));
    assert.ok(files.length >= 1);
    for (const f of files) {
      const bytes = readFileSync(path.join(dir, f));
      assert.equal(bytes.indexOf(secret), -1, `plaintext found in ${f}`);
      assert.equal(bytes.indexOf(Buffer.from(secret).toString('base64').slice(0, 20)), -1);
    }
    // The ciphertext is there (binary), so the search above looked at the right files.
    const all = Buffer.concat(files.map((f) => readFileSync(path.join(dir, f))));
    assert.notEqual(all.indexOf(made.entry.payload.subarray(0, 64)), -1);
  });
});

describe(onBackend('refusals'), () => {
  it('id_mismatch: the URL id is not the hash of the content', async () => {
    const made = await makeEntry({ table, to: alice, text: 'x' });
    const wrong = (made.id[0]! ^ 1).toString(16).padStart(2, '0') + made.idHex.slice(2);
    await expectRefusal(`/put/${wrong}`, made.json, 400, 'id_mismatch');
  });

  it('id_mismatch: content altered after signing', async () => {
    const made = await makeEntry({ table, to: alice, text: 'x' });
    await expectRefusal(`/put/${made.idHex}`, { ...made.json, created_at: made.json.created_at + 1 }, 400, 'id_mismatch');
  });

  it('pow_insufficient: proof below the node requirement', async () => {
    const made = await makeEntry({ table, to: alice, text: 'cheap', bits: 8 });
    // An 8-bit proof may by luck be worth more; make sure it is below 12.
    const { proofValue } = await import('../src/pow/cluster.js');
    if (proofValue(made.id, made.entry.proof) >= 12) return;
    await expectRefusal(`/put/${made.idHex}`, made.json, 403, 'pow_insufficient');
  });

  it('pow_insufficient: a proof minted for another entry', async () => {
    const a = await makeEntry({ table, to: alice, text: 'a' });
    const b = await makeEntry({ table, to: alice, text: 'b' });
    await expectRefusal(`/put/${b.idHex}`, { ...b.json, proof: a.json.proof }, 403, 'pow_insufficient');
  });

  it('bad_signature: signed by another key, or altered', async () => {
    const made = await makeEntry({ table, to: alice, text: 'sig' });
    const other = await makeEntry({ table, to: alice, text: 'other' });
    await expectRefusal(`/put/${made.idHex}`, { ...made.json, signature: other.json.signature }, 403, 'bad_signature');
    const sig = Buffer.from(made.json.signature, 'base64');
    sig[10]! ^= 0x40;
    await expectRefusal(`/put/${made.idHex}`, { ...made.json, signature: sig.toString('base64') }, 403, 'bad_signature');
  });

  it('bad_signature: an entry claiming a table whose key did not sign it', async () => {
    const real = await makeEntry({ table, to: alice, text: 'real' });
    const { entryId } = await import('../src/entry/canonical.js');
    const { signPss } = await import('../src/crypto/signature.js');
    const { mintProof } = await import('../src/pow/mint.js');
    const { entryToJson } = await import('../src/entry/wire.js');
    const content = { ...real.entry, createdAt: real.entry.createdAt + 1 };
    const id = entryId(content);
    const forged = { ...content, proof: mintProof(id, 12), signature: signPss(bob.privateKey, id) };
    await expectRefusal(`/put/${id.toString('hex')}`, entryToJson(forged), 403, 'bad_signature');
  });

  it('created_in_future', async () => {
    const made = await makeEntry({ table, to: alice, text: 'future', createdAt: Date.now() + 3_600_000 });
    await expectRefusal(`/put/${made.idHex}`, made.json, 400, 'created_in_future');
  });

  it('key_size and bad_key: table keys outside policy', async () => {
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const made = await makeEntry({ table, to: alice, text: 'k' });
    const { entryId } = await import('../src/entry/canonical.js');
    const { mintProof } = await import('../src/pow/mint.js');
    const { entryToJson } = await import('../src/entry/wire.js');
    const forTable = (der: Buffer) => {
      const e = { ...made.entry, table: der };
      const id = entryId(e);
      return { id: id.toString('hex'), json: entryToJson({ ...e, proof: mintProof(id, 12) }) };
    };
    const k1 = forTable(small.publicKey.export({ type: 'spki', format: 'der' }));
    await expectRefusal(`/put/${k1.id}`, k1.json, 400, 'key_size');
    const k2 = forTable(Buffer.concat([made.entry.table, Buffer.from([0])]));
    await expectRefusal(`/put/${k2.id}`, k2.json, 400, 'bad_key');
    const k3 = forTable(Buffer.from('not a key at all'));
    await expectRefusal(`/put/${k3.id}`, k3.json, 400, 'bad_key');
    // Over 4096 bits: named for the key, though its signature (513 bytes) is longer than RSA-4096's.
    const big = generateKeyPairSync('rsa', { modulusLength: 4104 });
    const k4 = forTable(big.publicKey.export({ type: 'spki', format: 'der' }));
    await expectRefusal(`/put/${k4.id}`, { ...k4.json, signature: randomBytes(513).toString('base64') }, 400, 'key_size');
  });

  it('malformed: not JSON, wrong types, bad base64, short proof, unknown version', async () => {
    const made = await makeEntry({ table, to: alice, text: 'm' });
    const url = `/put/${made.idHex}`;
    await expectRefusal(url, '{"v":1,', 400, 'malformed');
    await expectRefusal(url, '[1,2]', 400, 'malformed');
    await expectRefusal(url, { ...made.json, payload: 'not base64!' }, 400, 'malformed');
    await expectRefusal(url, { ...made.json, to: 'abc' }, 400, 'malformed');
    await expectRefusal(url, { ...made.json, created_at: '12' }, 400, 'malformed');
    await expectRefusal(url, { ...made.json, proof: Buffer.alloc(64).toString('base64') }, 400, 'malformed');
    await expectRefusal(url, { ...made.json, v: 2 }, 400, 'malformed');
    await expectRefusal('/put/not-an-id', made.json, 400, 'malformed');
  });

  it('payload_too_large: payload over the limit, and a body over the limit', async () => {
    const made = await makeEntry({ table, to: alice, text: 'y'.repeat(5000) });
    await expectRefusal(`/put/${made.idHex}`, made.json, 413, 'payload_too_large');
    await expectRefusal(`/put/${made.idHex}`, { ...made.json, pad: 'z'.repeat(200_000) }, 413, 'payload_too_large');
  });

  it('malformed: a truncated body (shorter than its Content-Length)', async () => {
    const made = await makeEntry({ table, to: alice, text: 'truncated' });
    const body = JSON.stringify(made.json).slice(0, 300);
    const before = await storedCount();
    const { port } = node;
    const answer = await new Promise<string>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.write(
          `POST /put/${made.idHex} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
            `Content-Length: ${body.length + 500}\r\n\r\n${body}`,
        );
        socket.end(); // the body stops short of its Content-Length
      });
      let text = '';
      socket.on('data', (c) => (text += c));
      socket.on('close', () => resolve(text));
      socket.on('error', () => resolve(text));
    });
    // The node answers 400 malformed if the socket still lets it, and never stores anything.
    if (answer !== '') {
      assert.match(answer, /^HTTP\/1\.1 400/);
      assert.match(answer, /"code":"malformed"/);
    }
    assert.equal(await storedCount(), before);
    assert.equal((await getJson(`${node.url}/hello/`)).status, 200, 'the node still answers');
  });

  it('unsupported_media_type', async () => {
    const made = await makeEntry({ table, to: alice, text: 'u' });
    await expectRefusal(`/put/${made.idHex}`, JSON.stringify(made.json), 415, 'unsupported_media_type', 'text/plain');
  });

  it('table_not_allowed on a node mirroring a whitelist', async () => {
    const { parsePublicKey } = await import('../src/crypto/keys.js');
    const allowed = parsePublicKey(table.publicPem).fingerprint.toString('hex');
    const narrow = await startTestNode({ allowedTables: [allowed] });
    try {
      const ok = await makeEntry({ table, to: alice, text: 'allowed' });
      assert.equal((await postJson(`${narrow.url}/put/${ok.idHex}`, ok.json)).status, 201);
      const other = await makeEntry({ table: bob, to: alice, text: 'not mirrored' });
      const res = await postJson(`${narrow.url}/put/${other.idHex}`, other.json);
      assert.equal(res.status, 403);
      assert.equal(res.body.error.code, 'table_not_allowed');
      assert.equal(await narrow.store.count(), 1);
      const hello = await getJson(`${narrow.url}/hello/`);
      assert.deepEqual(hello.body.tables, [allowed]);
    } finally {
      await narrow.close();
    }
  });
});

describe(onBackend('batches'), () => {
  it('answers entry by entry: stored, duplicate, rejected', async () => {
    const a = await makeEntry({ table, to: alice, text: 'batch a' });
    const b = await makeEntry({ table, to: bob, text: 'batch b' });
    const before = await storedCount();
    const res = await postJson(`${node.url}/put/`, [a.json, a.json, { ...b.json, signature: a.json.signature }, { junk: true }, b.json]);
    assert.equal(res.status, 200);
    const r = res.body.results;
    assert.deepEqual(r[0], { index: 0, id: a.idHex, status: 'stored' });
    assert.deepEqual(r[1], { index: 1, id: a.idHex, status: 'duplicate' });
    assert.equal(r[2].error.code, 'bad_signature');
    assert.equal(r[3].error.code, 'malformed');
    assert.deepEqual(r[4], { index: 4, id: b.idHex, status: 'stored' });
    assert.equal(res.body.stored, 2);
    assert.equal(res.body.duplicates, 1);
    assert.equal(res.body.rejected, 2);
    assert.equal(await storedCount(), before + 2);
  });

  it('accepts NDJSON, with a broken line answered in its slot', async () => {
    const a = await makeEntry({ table, to: alice, text: 'nd a' });
    const b = await makeEntry({ table, to: alice, text: 'nd b' });
    const body = `${JSON.stringify(a.json)}\n{not json\n\n${JSON.stringify(b.json)}\n`;
    const res = await postJson(`${node.url}/put/`, body, 'application/x-ndjson');
    assert.equal(res.status, 200);
    assert.equal(res.body.results.length, 3);
    assert.equal(res.body.results[0].status, 'stored');
    assert.equal(res.body.results[1].error.code, 'malformed');
    assert.equal(res.body.results[2].status, 'stored');
  });

  it('refuses a batch over the entry limit, storing none of it', async () => {
    const a = await makeEntry({ table, to: alice, text: 'over' });
    await expectRefusal('/put/', new Array(51).fill(a.json), 413, 'batch_too_large');
    await expectRefusal('/put/', { not: 'an array' }, 400, 'malformed');
  });
});

describe(onBackend('the bound of one entry (8 × max_payload_bytes + 64 KiB), in every route'), () => {
  // The node of this file: max_payload_bytes 4096.
  const bound = maxEntryBytes(4096);
  let bigTable: TestKey;
  let bigTo: TestKey;
  before(() => {
    bigTable = testKey(4096);
    bigTo = testKey(4096);
  });

  /** The largest valid entry: RSA-4096 keys, an envelope of exactly max_payload_bytes. */
  async function largest(tag: string) {
    // envelope = 3 + 512 (wrapped key) + 12 (iv) + plaintext + 16 (tag)
    const made = await makeEntry({ table: bigTable, to: bigTo, text: tag.padEnd(4096 - 3 - 512 - 12 - 16, '.') });
    assert.equal(made.entry.payload.length, 4096);
    return made;
  }
  const everyByte = (v: string, esc: (code: number) => string) => [...v].map((c) => esc(c.charCodeAt(0))).join('');

  it('a largest entry form-encoded with every byte percent-escaped and PEM keys is stored', async () => {
    const made = await largest('form');
    const fields: Record<string, string> = {
      v: '1', id: made.idHex, table: bigTable.publicPem, to: bigTo.publicPem, created_at: String(made.entry.createdAt),
      payload: made.json.payload, signature: made.json.signature, proof: made.json.proof,
    };
    const hex = (c: number) => '%' + c.toString(16).toUpperCase().padStart(2, '0');
    const body = Object.entries(fields).map(([k, v]) => `${k}=${everyByte(v, hex)}`).join('&');
    const oldBound = Math.ceil((4096 * 4) / 3) + 8 * 1024; // base64 of the payload + 8 KiB: too small for this
    assert.ok(body.length > oldBound, `the body (${body.length} bytes) is over the old bound`);
    const res = await postJson(`${node.url}/put/${made.idHex}`, body, 'application/x-www-form-urlencoded');
    assert.equal(res.status, 201, JSON.stringify(res.body));
  });

  it('a largest entry as JSON with every string character \\u-escaped is stored, alone and in a batch', async () => {
    const esc = (c: number) => '\\u' + c.toString(16).padStart(4, '0');
    const encode = (json: Record<string, unknown>) =>
      '{' + Object.entries(json).map(([k, v]) => `"${k}":` + (typeof v === 'string' ? `"${everyByte(v, esc)}"` : JSON.stringify(v))).join(',') + '}';
    const one = await largest('json one');
    const res = await postJson(`${node.url}/put/${one.idHex}`, encode({ ...one.json }));
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const two = await largest('json two');
    const batch = await postJson(`${node.url}/put/`, `[${encode({ ...two.json })}]`);
    assert.deepEqual(batch.body.results, [{ index: 0, id: two.idHex, status: 'stored' }]);
  });

  it('an unknown field is ignored within the bound and refused past it, the same way alone and in a batch', async () => {
    const small = await makeEntry({ table, to: alice, text: 'with a modest unknown field' });
    const modest = { ...small.json, note: 'n'.repeat(20_000) };
    assert.equal((await postJson(`${node.url}/put/${small.idHex}`, modest)).status, 201);

    const huge = await makeEntry({ table, to: alice, text: 'with a huge unknown field' });
    const over = { ...huge.json, pad: 'z'.repeat(bound) };
    await expectRefusal(`/put/${huge.idHex}`, over, 413, 'payload_too_large');

    const fine = await makeEntry({ table, to: bob, text: 'next to a huge one' });
    const arr = await postJson(`${node.url}/put/`, [ over, fine.json ]);
    assert.equal(arr.status, 200);
    assert.equal(arr.body.results[0].error.code, 'payload_too_large');
    assert.deepEqual(arr.body.results[1], { index: 1, id: fine.idHex, status: 'stored' });

    const nd = await postJson(`${node.url}/put/`, `${JSON.stringify(small.json)}\n${JSON.stringify(over)}\n`, 'application/x-ndjson');
    assert.equal(nd.body.results[0].status, 'duplicate');
    assert.equal(nd.body.results[1].error.code, 'payload_too_large');
    assert.match(nd.body.results[1].error.message, /line 2/);
    const got = await getJson(`${node.url}/get/?ids=${huge.idHex}`);
    assert.equal(got.body.entries.length, 0, 'the entry with the huge field is stored by no route');
  });

  it('measures array items exactly: nested values, strings with brackets and escapes, whitespace', () => {
    const text = ' [ {"a":[1,{"b":"],\\\\\\""}]} ,\n "x,]" , 12 ,[[]] ] ';
    const raw = Buffer.from(text);
    const items = arrayItemSpans(raw).map(({ start, end }) => raw.subarray(start, end).toString());
    assert.deepEqual(items.map((t) => JSON.parse(t)), JSON.parse(text));
    assert.deepEqual(items, ['{"a":[1,{"b":"],\\\\\\""}]}', '"x,]"', '12', '[[]]']);
  });
});

describe(onBackend('/get/ filters'), () => {
  let tableB: TestKey;
  const made: { idHex: string; to: TestKey; table: TestKey }[] = [];
  before(async () => {
    tableB = testKey();
    for (let i = 0; i < 6; i++) {
      const t = i % 2 === 0 ? table : tableB;
      const to = i % 3 === 0 ? bob : alice;
      const m = await makeEntry({ table: t, to, text: `filter ${i}` });
      assert.equal((await postJson(`${node.url}/put/${m.idHex}`, m.json)).status, 201);
      made.push({ idHex: m.idHex, to, table: t });
    }
  });

  const fp = async (k: TestKey) => (await import('../src/crypto/keys.js')).parsePublicKey(k.publicPem).fingerprint.toString('hex');

  it('requires a filter', async () => {
    const res = await getJson(`${node.url}/get/`);
    assert.equal(res.status, 400);
    assert.equal(res.body.error.code, 'bad_request');
    assert.equal((await getJson(`${node.url}/get/?limit=0&after=0`)).body.error.code, 'bad_request');
    assert.equal((await getJson(`${node.url}/get/?tables=xyz`)).body.error.code, 'malformed');
    // A list naming nothing could only match nothing: refused, on /subscribe/ too (no stream slot held).
    for (const q of ['/get/?tables=,', '/get/?after=0&recipients=,,', '/subscribe/?tables=,', '/subscribe/?ids=,']) {
      const r = await getJson(`${node.url}${q}`);
      assert.deepEqual([r.status, r.body.error?.code], [400, 'bad_request'], q);
    }
  });

  it('integers: 1 to 16 digits, at most 2^53 − 1 (docs/PROTOCOL.md §6)', async () => {
    const max = String(Number.MAX_SAFE_INTEGER);
    assert.deepEqual((await getJson(`${node.url}/get/?after=${max}`)).body, { entries: [], next: null });
    assert.equal((await getJson(`${node.url}/get/?seconds_since=0000000000000001`)).status, 200);
    for (const bad of [String(2 ** 53), '00000000000000001', '-1', '1e3', '+1']) {
      const r = await getJson(`${node.url}/get/?after=${encodeURIComponent(bad)}`);
      assert.deepEqual([r.status, r.body.error?.code], [400, 'bad_request'], bad);
    }
  });

  it('tables= returns only those tables', async () => {
    const res = await getJson(`${node.url}/get/?tables=${await fp(tableB)}`);
    const ids = res.body.entries.map((e: { id: string }) => e.id).sort();
    assert.deepEqual(ids, made.filter((m) => m.table === tableB).map((m) => m.idHex).sort());
  });

  it('recipients= and tables= combine', async () => {
    const res = await getJson(`${node.url}/get/?tables=${await fp(tableB)}&recipients=${await fp(bob)}`);
    const ids = res.body.entries.map((e: { id: string }) => e.id).sort();
    assert.deepEqual(ids, made.filter((m) => m.table === tableB && m.to === bob).map((m) => m.idHex).sort());
    assert.ok(ids.length >= 1);
  });

  it('ids= returns exactly those entries', async () => {
    const want = [made[1]!.idHex, made[4]!.idHex];
    const res = await getJson(`${node.url}/get/?ids=${want.join(',')}`);
    assert.deepEqual(res.body.entries.map((e: { id: string }) => e.id).sort(), want.sort());
  });

  it('after= pages through everything with a next cursor, in store order, without repeats', async () => {
    const seen: string[] = [];
    let cursor = '0';
    let pages = 0;
    for (;;) {
      const res = await getJson(`${node.url}/get/?after=${cursor}&limit=4`);
      assert.equal(res.status, 200);
      pages++;
      for (const e of res.body.entries) seen.push(e.id);
      if (res.body.next === null) break;
      cursor = res.body.next;
    }
    assert.equal(new Set(seen).size, seen.length);
    assert.equal(seen.length, await storedCount());
    assert.ok(pages >= 2);
    for (const m of made) assert.ok(seen.includes(m.idHex));
  });

  it('seconds_since=0 returns nothing older than now', async () => {
    const res = await getJson(`${node.url}/get/?seconds_since=0`);
    assert.equal(res.status, 200);
    assert.equal(res.body.entries.length, 0);
  });
});

describe(onBackend('the node itself'), () => {
  it('/hello/ says what it is', async () => {
    const res = await getJson(`${node.url}/hello/`);
    assert.equal(res.status, 200);
    assert.equal(res.body.protocol, 'p2pdb/1');
    assert.equal(res.body.tables, '*');
    assert.equal(res.body.pow_bits, 12);
    assert.equal(res.body.limits.max_payload_bytes, 4096);
    assert.equal(res.body.limits.max_batch_entries, 50);
  });

  it('listens on loopback and refuses any other listen address', async () => {
    assert.equal(node.host, '127.0.0.1');
    for (const host of ['0.0.0.0', '::', '192.168.1.10', 'example.org']) {
      assert.throws(() => resolveConfig({ host }), { code: 'config_invalid' });
      const config = { ...resolveConfig({ port: 0 }), host };
      await assert.rejects(startNode(config, { log: silentLogger }), { code: 'config_invalid' });
    }
  });

  it('answers unknown routes and methods with JSON errors', async () => {
    const res = await getJson(`${node.url}/nope`);
    assert.equal(res.status, 404);
    assert.equal(res.body.error.code, 'not_found');
    const r2 = await fetch(`${node.url}/get/`, { method: 'DELETE' });
    assert.equal(r2.status, 405);
    assert.equal(((await r2.json()) as any).error.code, 'method_not_allowed');
  });
});
