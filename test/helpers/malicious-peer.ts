/**
 * A malicious peer for the sync tests: a small Koa server of the test's own, published as an
 * onion service through the private test network. It answers /hello/ validly (a real onion
 * identity, signed hellos) and speaks the real reconciliation protocol over its own store, but
 * that store holds forged entries written straight past verification: a signature of another
 * entry, a payload corrupted after the id was computed, a proof below the bits it claims to
 * require. Its pull routes also slip in a valid entry of a table nobody asked for.
 * In 'garbage' mode its POST /sync/ answers random bytes (a malformed sync message).
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import Router from '@koa/router';
import Koa from 'koa';
import { sha256 } from '../../src/crypto/hash.js';
import { entryToJson } from '../../src/entry/wire.js';
import type { ValidEntry } from '../../src/entry/validate.js';
import { helloRoutes } from '../../src/http/routes/hello.js';
import { readBody } from '../../src/http/body.js';
import { newIdentity } from '../../src/identity/onion-key.js';
import { startOnionService, type OnionService } from '../../src/node/onion-service.js';
import { attachedTor } from '../../src/node/tor-runtime.js';
import { proofValue } from '../../src/pow/cluster.js';
import { parseCursor, type RangeEntry } from '../../src/store/range-queries.js';
import { openStore } from '../../src/store/open.js';
import { answerSync } from '../../src/sync/reconcile.js';
import { SyncIndex } from '../../src/sync/sync-index.js';
import type { Testnet, ClientTor } from '../../src/tor/testnet.js';
import { waitFor } from '../../src/tor/wait.js';
import { silentLogger } from '../../src/util/log.js';
import { makeEntry, type MadeEntry, type TestKey } from './entries.js';
import { tempDir } from './tmp.js';

export interface MaliciousPeer {
  onion: string;
  /** Ids of the forged entries it holds (none of which may ever be stored by an honest node). */
  forgedIds: string[];
  /** The valid entry of an unasked-for table it slips into pull answers. */
  intruder: MadeEntry;
  mode: { garbage: boolean };
  close(): Promise<void>;
}

function valid(e: MadeEntry, overrides: Partial<ValidEntry['entry']> = {}): ValidEntry {
  return { entry: { ...e.entry, ...overrides }, id: e.id, tableFingerprint: sha256(e.entry.table), powValue: 12 };
}

/** `count` forged entries of `table`, a third of each kind. */
async function forgedEntries(count: number, table: TestKey, to: TestKey): Promise<ValidEntry[]> {
  const out: ValidEntry[] = [];
  const donor = await makeEntry({ table, to, text: 'donor' });
  for (let i = 0; i < count; i++) {
    if (i % 3 === 0) {
      const e = await makeEntry({ table, to, text: `forged signature ${i}` });
      out.push(valid(e, { signature: donor.entry.signature }));
    } else if (i % 3 === 1) {
      const e = await makeEntry({ table, to, text: `corrupted ${i}` });
      const payload = Buffer.from(e.entry.payload);
      payload[payload.length - 1]! ^= 0x01;
      out.push(valid(e, { payload }));
    } else {
      let e: MadeEntry;
      do e = await makeEntry({ table, to, text: `weak proof ${i} ${Math.random()}`, bits: 4 });
      while (proofValue(e.id, e.entry.proof) >= 12);
      out.push(valid(e));
    }
  }
  return out;
}

function line(e: { entry: ValidEntry['entry']; id: Buffer }): string {
  return JSON.stringify(entryToJson(e.entry, e.id)) + '\n';
}

export async function startMaliciousPeer(
  net: Testnet,
  opts: { table: TestKey; intruderTable: TestKey; to: TestKey; forged: number },
): Promise<MaliciousPeer> {
  const dir = tempDir('p2pdb-mallory-');
  const store = await openStore({ database: { kind: 'sqlite', filename: path.join(dir, 'p2pdb.sqlite') }, durability: 'normal' });
  const forged = await forgedEntries(opts.forged, opts.table, opts.to);
  await store.insert(forged); // straight past every check
  const index = await SyncIndex.open({ store, dataDir: dir });
  const ranges = store.ranges;
  const intruder = await makeEntry({ table: opts.intruderTable, to: opts.to, text: 'intruder' });
  const identity = newIdentity();
  const peerStore = store.peers({ self: identity.address });
  const mode = { garbage: false };

  const info = {
    protocol: 'p2pdb/1',
    onion: identity.address,
    software: 'mallory/1',
    tables: '*' as const,
    pow_bits: 12,
    limits: { max_payload_bytes: 65536, max_body_bytes: 16 * 1024 * 1024, max_batch_entries: 2000, max_future_skew_ms: 300_000 },
  };
  const sync = new Router();
  sync.post('/sync/', async (ctx) => {
    const raw = await readBody(ctx.req, 1024 * 1024);
    ctx.type = 'application/octet-stream';
    ctx.body = mode.garbage ? randomBytes(64) : Buffer.from(await answerSync(index.view, raw, { mirrors: () => true }));
  });
  sync.post('/sync/fetch', async (ctx) => {
    const { ids } = JSON.parse((await readBody(ctx.req, 1024 * 1024)).toString('utf8')) as { ids: string[] };
    const found: RangeEntry[] = await ranges.byIds(ids.map((i) => Buffer.from(i, 'hex')));
    ctx.type = 'application/x-ndjson';
    ctx.body = found.map(line).join('') + line(intruder);
  });
  sync.get('/sync/range', async (ctx) => {
    const q = ctx.query as Record<string, string>;
    const prefix = q.prefix ?? '';
    const page = await ranges.rangePage({ table: Buffer.from(q.table!, 'hex'), prefix, after: parseCursor(prefix, q.after), limit: Number(q.limit ?? 500) });
    ctx.type = 'application/x-ndjson';
    if (page.next) ctx.set('x-p2pdb-next', page.next);
    ctx.body = page.entries.map(line).join('') + line(intruder);
  });
  // Takes pushes and keeps nothing.
  sync.post('/put/', async (ctx) => {
    await readBody(ctx.req, 64 * 1024 * 1024);
    ctx.body = { results: [], stored: 0, duplicates: 0, rejected: 0 };
  });
  const app = new Koa();
  for (const router of [helloRoutes({ info, identity, peerStore }), sync]) app.use(router.routes());
  const server: Server = createServer(app.callback());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;

  let tor: ClientTor | undefined;
  let onion: OnionService | undefined;
  try {
    tor = await net.startClientTor(`mallory${port}`);
    onion = await startOnionService({ identity, runtime: attachedTor({ control: `127.0.0.1:${tor.controlPort}` }), targetPort: port, log: silentLogger });
    await waitFor(() => onion!.state().published, { timeoutMs: 90_000, what: 'mallory published' });
  } catch (err) {
    await onion?.stop();
    await tor?.stop();
    server.close();
    throw err;
  }
  return {
    onion: identity.address,
    forgedIds: forged.map((f) => f.id.toString('hex')),
    intruder,
    mode,
    async close() {
      await onion?.stop();
      await tor?.stop();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await index.close();
      await store.close();
    },
  };
}
