/**
 * The Node client library (src/client/index.ts) against a live node: keys, encryption and
 * signatures, put with worker-thread minting, paged get, live subscriptions that resume by
 * Last-Event-ID across a cut connection, typed error codes, and cancelling a mint.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, type JsonWebKey } from 'node:crypto';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { SocksProxyAgent } from 'socks-proxy-agent';
import {
  NodeApi,
  P2pdbClient,
  P2pdbError,
  SseParser,
  decrypt,
  encrypt,
  exportPrivateKey,
  exportPublicKey,
  fingerprintOf,
  generateKeys,
  importPrivateKey,
  importPublicKey,
  sign,
  verify,
  type KeyPair,
  type VerifiedEntry,
} from '../src/client/index.js';
import { parsePublicKey } from '../src/crypto/keys.js';
import type { RunningNode } from '../src/node/node.js';
import { waitFor } from '../src/tor/wait.js';
import { closedPort } from './helpers/cli.js';
import { startTestNode } from './helpers/node.js';
import { onBackend } from './helpers/backend.js';

let node: RunningNode;
let client: P2pdbClient;
let table: KeyPair;
let alice: KeyPair;
let bob: KeyPair;
/** onStored listeners the node registers itself (sync), before any subscription. */
let ownListeners = 0;
const listenerCount = () => (node.store as unknown as { listenerCount: number }).listenerCount;

before(async () => {
  node = await startTestNode();
  client = new P2pdbClient(node.url, { mintThreads: 2 });
  [table, alice, bob] = await Promise.all([generateKeys(), generateKeys(), generateKeys()]);
  ownListeners = listenerCount();
});
after(async () => {
  await client.close();
  await node.close();
});

async function expectCode(p: Promise<unknown> | (() => unknown), code: string): Promise<P2pdbError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    assert.ok(e instanceof P2pdbError, `expected a P2pdbError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return e;
  }
  assert.fail(`expected ${code}, nothing was thrown`);
}

/** A loopback TCP relay to the node that the test can cut and heal, recording each request head. */
async function cuttableProxy(targetPort: number) {
  const sockets = new Set<net.Socket>();
  const heads: string[] = [];
  let cut = false;
  const server = net.createServer((client) => {
    if (cut) return client.destroy();
    const upstream = net.connect(targetPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    client.once('data', (d: Buffer) => heads.push(d.toString('latin1')));
    client.pipe(upstream).pipe(client);
    const gone = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', gone).on('close', gone);
    upstream.on('error', gone).on('close', gone);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    heads,
    cut() {
      cut = true;
      for (const s of sockets) s.destroy();
    },
    heal() {
      cut = false;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('keys and crypto', () => {
  it('generates, exports and imports keys (PEM and JWK) with stable fingerprints', async () => {
    const fp = parsePublicKey(exportPublicKey(table.publicKey, 'pem') as string).fingerprint.toString('hex');
    assert.equal(table.fingerprint, fp);
    assert.equal(fingerprintOf(table.privateKey), fp);
    assert.equal(importPrivateKey(exportPrivateKey(table.privateKey, 'pem') as string).fingerprint, fp);
    const jwk = exportPrivateKey(table.privateKey, 'jwk') as { d?: string; p?: string };
    assert.ok(jwk.d && jwk.p, 'a full private JWK');
    assert.equal(importPrivateKey(jwk).fingerprint, fp);
    assert.equal(importPublicKey(exportPublicKey(table.publicKey, 'jwk') as JsonWebKey).fingerprint, fp);
    assert.equal(importPublicKey(exportPublicKey(table.publicKey, 'der') as Buffer).fingerprint, fp);
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    await expectCode(() => importPrivateKey(small), 'key_size');
    await expectCode(() => importPublicKey('not a key'), 'bad_key');
  });

  it('encrypts to a key and only that key decrypts; signs and verifies', async () => {
    const box = encrypt(alice.publicKey, Buffer.from('secret'));
    assert.equal(decrypt(alice.privateKey, box).toString(), 'secret');
    await expectCode(() => decrypt(bob.privateKey, box), 'decrypt_failed');
    const sig = sign(table.privateKey, Buffer.from('msg'));
    assert.ok(verify(table.publicKey, Buffer.from('msg'), sig));
    assert.ok(!verify(table.publicKey, Buffer.from('msh'), sig));
  });

  it('parses SSE the way the standard says: CRLF, split chunks, multi-line data, comments, ids', () => {
    const p = new SseParser();
    const events = [...p.push(': keepalive\r\n\r\nid: 7\r'), ...p.push('\nevent: entry\ndata: a\nda'), ...p.push('ta: b\n\ndata: c\n\n')];
    assert.deepEqual(events, [
      { event: 'entry', data: 'a\nb', lastEventId: '7' },
      { event: 'message', data: 'c', lastEventId: '7' },
    ]);
  });
});

describe(onBackend('put and get'), () => {
  it('puts entries (minting on worker threads, with progress) and reads them back page by page, verified and decrypted', async () => {
    const progress: number[] = [];
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await client.put({ table: table.privateKey, to: alice.publicKey, data: `message ${i}`, onProgress: (x) => progress.push(x.tokensDone) });
      assert.equal(r.status, 'stored');
      ids.push(r.id);
    }
    assert.ok(progress.length >= 5 && progress.includes(16), 'progress reports end at 16 of 16 tokens');
    const pages = [];
    for await (const page of client.pages({ tables: [table.fingerprint], limit: 2 })) pages.push(page);
    assert.deepEqual(pages.map((p) => p.entries.length), [2, 2, 1]);
    const read: VerifiedEntry[] = [];
    for await (const e of client.get({ recipients: [alice.fingerprint], limit: 2 })) read.push(e);
    assert.deepEqual(read.map((e) => e.idHex), ids);
    assert.deepEqual(read.map((e) => client.open(e, alice.privateKey).toString()), [0, 1, 2, 3, 4].map((i) => `message ${i}`));
    assert.ok(read.every((e) => e.tableFingerprintHex === table.fingerprint && e.toHex === alice.fingerprint));
    const again = await client.put({ table: table.privateKey, to: alice.publicKey, data: 'x', powBits: 12 });
    assert.equal((await client.putEntry((await client.get({ ids: [again.id] }).next()).value!.entry)).status, 'duplicate');
  });
});

describe(onBackend('subscribe'), () => {
  it('receives live entries and resumes by Last-Event-ID after the connection is cut, without gaps or duplicates', async () => {
    const proxy = await cuttableProxy(node.port);
    const via = new P2pdbClient(proxy.url);
    const stop = new AbortController();
    const got: VerifiedEntry[] = [];
    let opens = 0;
    const consuming = (async () => {
      for await (const e of via.subscribe({ recipients: [bob.fingerprint] }, { signal: stop.signal, minBackoffMs: 20, maxBackoffMs: 200, onOpen: () => opens++ })) got.push(e);
    })();
    try {
      await waitFor(() => opens === 1, { timeoutMs: 10_000, intervalMs: 10, what: 'the subscription to open' });
      const put = (text: string) => client.put({ table: table.privateKey, to: bob.publicKey, data: text });
      const e1 = await put('b1');
      await waitFor(() => got.length === 1, { timeoutMs: 10_000, intervalMs: 10, what: 'the first live entry' });
      proxy.cut();
      const e2 = await put('b2');
      const e3 = await put('b3');
      proxy.heal();
      await waitFor(() => got.length >= 3, { timeoutMs: 20_000, intervalMs: 10, what: 'the entries committed while cut' });
      const e4 = await put('b4');
      await waitFor(() => got.length >= 4, { timeoutMs: 10_000, intervalMs: 10, what: 'a live entry after the reconnect' });
      assert.deepEqual(got.map((e) => e.idHex), [e1.id, e2.id, e3.id, e4.id]);
      assert.deepEqual(got.map((e) => client.open(e, bob.privateKey).toString()), ['b1', 'b2', 'b3', 'b4']);
      assert.ok(opens >= 2, 'it reconnected');
      const resumedWith = proxy.heads.slice(1).map((h) => /last-event-id: (\d+)/i.exec(h)?.[1]);
      assert.ok(resumedWith.includes(got[0]!.seq), `a reconnect asked for entries after seq ${got[0]!.seq}: ${JSON.stringify(resumedWith)}`);
    } finally {
      stop.abort();
      await consuming;
      await proxy.close();
    }
    await waitFor(() => listenerCount() === ownListeners, { timeoutMs: 5_000, what: 'the subscription to end on the node' });
  });

  it('replays from after: "0" and ends quietly when aborted', async () => {
    const stop = new AbortController();
    const seen: string[] = [];
    for await (const e of client.subscribe({ tables: [table.fingerprint] }, { after: '0', signal: stop.signal })) {
      seen.push(e.idHex);
      if (seen.length === 3) stop.abort();
    }
    assert.equal(seen.length, 3);
  });
});

describe('typed errors', () => {
  it('carries the node error codes', async () => {
    await expectCode(client.getPage({ ids: ['zz'] }), 'malformed');
    await expectCode(client.getPage({}), 'bad_request');
    const sub = client.subscribe({ tables: ['zz'] });
    await expectCode(sub.next(), 'malformed');
    // `after` belongs in the options; among the filters it would be dropped and nothing replayed.
    await expectCode(client.subscribe({ tables: [table.fingerprint], after: '0' } as never).next(), 'bad_request');
    const narrow = await startTestNode({ allowedTables: [bob.fingerprint] });
    const narrowClient = new P2pdbClient(narrow.url, { mintThreads: 1 });
    try {
      await expectCode(narrowClient.put({ table: table.privateKey, to: alice.publicKey, data: 'x' }), 'table_not_allowed');
    } finally {
      await narrowClient.close();
      await narrow.close();
    }
    await expectCode(new P2pdbClient(`http://127.0.0.1:${await closedPort()}`).hello(), 'node_unreachable');
  });

  it('refuses an onion URL without a SOCKS agent that lets tor resolve names', async () => {
    const onion = 'http://aoqqpp7tzyil4hlq3umoos6atft6jvrqtosq2xy53sdgiesvgg4bqead.onion';
    await expectCode(() => new P2pdbClient(onion), 'config_invalid');
    await expectCode(() => new P2pdbClient(onion, { agent: new SocksProxyAgent('socks5://127.0.0.1:9') }), 'config_invalid');
    await expectCode(() => new P2pdbClient('http://not-an-onion-really.onion', { agent: new SocksProxyAgent('socks5h://127.0.0.1:9') }), 'not_onion_url');
    // The bare NodeApi too: with the global fetch an onion name would go to the local resolver.
    await expectCode(() => new NodeApi(onion), 'config_invalid');
    await expectCode(() => new NodeApi(onion, { fetch: globalThis.fetch }), 'config_invalid');
  });
});

describe('mint', () => {
  it('reports progress and cancels with an AbortError', async () => {
    const stop = new AbortController();
    let reports = 0;
    const minting = client.mint(randomBytes(32), 40, {
      signal: stop.signal,
      onProgress: () => {
        reports++;
        stop.abort();
      },
    });
    await assert.rejects(minting, (e: Error) => e.name === 'AbortError');
    assert.ok(reports >= 1);
    // The pool is still usable afterwards.
    assert.equal((await client.put({ table: table.privateKey, to: alice.publicKey, data: 'after cancel' })).status, 'stored');
  });
});
