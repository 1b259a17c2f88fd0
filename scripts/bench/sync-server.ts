/**
 * The far side of the sync benchmark, run in its own process (bench/child.ts mode
 * `sync-server DATA_DIR`): a store with its SyncIndex answering POST /sync/ exactly as a node
 * does, plus the seed prototype's approach for comparison, re-implemented from its description
 * (../shared/notes/seed-prototype.md): GET /seed/index rebuilds the 50,000 MD5 bucket hashes
 * from every row (as the seed did per request) and GET /seed/bucket?b=N answers a whole bucket.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { storedEntryToJson } from '../../src/http/routes/get.js';
import { openSqliteStore as openStore, type SqliteStore as SqliteEntryStore } from '../../src/store/sqlite/open.js';
import { answerSync } from '../../src/sync/reconcile.js';
import { SyncIndex } from '../../src/sync/sync-index.js';

export const SEED_BUCKETS = 50_000;

/** The seed's bucket of an entry: MD5 of the payload, as an integer, mod 50,000. */
export function seedBucketOf(payload: Buffer): number {
  const d = createHash('md5').update(payload).digest();
  // MD5 as a 128-bit big-endian integer mod 50,000, folded 32 bits at a time.
  let r = 0;
  for (let i = 0; i < 16; i += 4) r = (r * 4294967296 + d.readUInt32BE(i)) % SEED_BUCKETS;
  return r;
}

export interface SeedIndex {
  /** Bucket → hex MD5 of its ids (sorted), for buckets that hold anything. */
  hashes: Map<number, string>;
  /** Bucket → ids of its entries. */
  members: Map<number, Buffer[]>;
}

/** Reads every row, as the seed's /index/ did per request. */
export async function buildSeedIndex(store: SqliteEntryStore): Promise<SeedIndex> {
  const ids = new Map<number, Buffer[]>();
  let after = 0;
  for (;;) {
    const { entries } = await store.query({ afterSeq: after, limit: 20000 });
    if (entries.length === 0) break;
    for (const r of entries) {
      const b = seedBucketOf(r.entry.payload);
      (ids.get(b) ?? ids.set(b, []).get(b)!).push(r.id);
    }
    after = entries[entries.length - 1]!.seq;
  }
  const hashes = new Map<number, string>();
  const members = new Map<number, Buffer[]>();
  for (const [b, list] of ids) {
    members.set(b, list);
    list.sort(Buffer.compare);
    const h = createHash('md5');
    for (const id of list) h.update(id.toString('hex'));
    hashes.set(b, h.digest('hex'));
  }
  return { hashes, members };
}

function readAll(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export async function runSyncServer(dataDir: string): Promise<void> {
  const store = await openStore({ filename: path.join(dataDir, 'p2pdb.sqlite'), durability: 'normal' });
  const index = await SyncIndex.open({ store, dataDir });
  const scope = { mirrors: () => true };
  let seed: SeedIndex | undefined;
  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const body = await readAll(req);
      if (req.method === 'POST' && url.pathname === '/sync/') {
        const reply = await answerSync(index.view, body, scope);
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': reply.length });
        res.end(reply);
      } else if (url.pathname === '/seed/index') {
        seed = await buildSeedIndex(store); // rebuilt per request, as the seed did
        const buckets: [number, string][] = [];
        for (let b = 0; b < SEED_BUCKETS; b++) buckets.push([b, seed.hashes.get(b) ?? createHash('md5').digest('hex')]);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ buckets }));
      } else if (url.pathname === '/seed/bucket') {
        const ids = seed?.members.get(Number(url.searchParams.get('b'))) ?? [];
        const page = ids.length === 0 ? { entries: [] } : await store.query({ ids, limit: ids.length });
        const entries = page.entries.map(storedEntryToJson);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ entries }));
      } else {
        res.writeHead(404).end();
      }
    })().catch((err: unknown) => {
      res.writeHead(500).end(String(err));
    });
  });
  server.listen(0, '127.0.0.1', () => {
    const { port } = server.address() as AddressInfo;
    process.stdout.write(JSON.stringify({ url: `http://127.0.0.1:${port}` }) + '\n');
  });
  process.on('SIGTERM', () =>
    server.close(() =>
      void index
        .close()
        .then(() => store.close())
        .then(() => process.exit(0)),
    ),
  );
}
