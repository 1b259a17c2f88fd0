/**
 * The sync transport (docs/PROTOCOL.md section 10): POST /sync/ (binary reconciliation, one
 * reply per request, stateless), POST /sync/fetch (entries by id), GET /sync/range (a table's
 * entries under an id prefix, page by page with a cursor) and GET /index/ (per-table roots).
 * Only tables this node mirrors are ever served; every input is bounded and checked.
 */
import Router from '@koa/router';
import { sha256 } from '../../crypto/hash.js';
import { entryToJson } from '../../entry/wire.js';
import { fail } from '../../errors.js';
import { checkPrefix, MAX_FETCH_IDS, MAX_RANGE_LIMIT, parseCursor, type RangeEntry, type RangeQueries } from '../../store/range-queries.js';
import { NDJSON_CONTENT_TYPE, NEXT_HEADER, SYNC_CONTENT_TYPE } from '../../sync/transport.js';
import { fromHex } from '../../util/bytes.js';
import { readBody } from '../body.js';

/** The reconciliation core as the routes see it (SyncIndex + answerSync, wired in node.ts). */
export interface SyncServer {
  answer(request: Uint8Array): Promise<Uint8Array>;
  tables(): { table: Buffer; count: number; fingerprint: Buffer }[];
}

export interface SyncRouteDeps {
  server: SyncServer;
  ranges: RangeQueries;
  mirrors(table: Buffer): boolean;
  protocol: string;
}

/** A reconcile request carries fingerprints of at most a few thousand nodes. */
export const MAX_SYNC_REQUEST_BYTES = 1024 * 1024;
/** {"ids": [...]} of MAX_FETCH_IDS ids: 67 bytes each. */
export const MAX_FETCH_BODY_BYTES = 160 * 1024;
export const DEFAULT_RANGE_LIMIT = 500;

type Query = Record<string, string | string[] | undefined>;

function single(query: Query, name: string): string | undefined {
  const v = query[name];
  if (Array.isArray(v)) fail('bad_request', `${name} may be given once`);
  return v;
}

function mediaType(header: string | undefined): string {
  return (header ?? '').split(';')[0]!.trim().toLowerCase();
}

function ndjson(entries: RangeEntry[]): string {
  let out = '';
  for (const e of entries) out += JSON.stringify(entryToJson(e.entry, e.id)) + '\n';
  return out;
}

/**
 * Bounds the sync requests served at once (each may hold a 16 MiB page in memory); a few more
 * wait, beyond that the answer is `busy` (503) and the peer retries later.
 */
export class RequestGate {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    private readonly concurrency: number,
    private readonly maxWaiting: number,
  ) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.concurrency) {
      if (this.waiting.length >= this.maxWaiting) fail('busy', 'this node is serving as many sync requests as it can; retry later');
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else this.active++;
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next(); // the slot passes straight on
      else this.active--;
    }
  }
}

export function syncRoutes(deps: SyncRouteDeps, gate = new RequestGate(4, 32)): Router {
  const router = new Router();
  router.use(['/sync/', '/sync/fetch', '/sync/range'], (ctx, next) => gate.run(next));

  router.post('/sync/', async (ctx) => {
    if (mediaType(ctx.get('content-type')) !== SYNC_CONTENT_TYPE) {
      fail('unsupported_media_type', `a sync message is sent as ${SYNC_CONTENT_TYPE}`);
    }
    const raw = await readBody(ctx.req, MAX_SYNC_REQUEST_BYTES);
    const reply = await deps.server.answer(new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength));
    ctx.type = SYNC_CONTENT_TYPE;
    ctx.body = Buffer.from(reply.buffer, reply.byteOffset, reply.byteLength);
  });

  router.post('/sync/fetch', async (ctx) => {
    if (mediaType(ctx.get('content-type')) !== 'application/json') fail('unsupported_media_type', 'a fetch is sent as application/json');
    const raw = await readBody(ctx.req, MAX_FETCH_BODY_BYTES);
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw.toString('utf8'));
    } catch {
      fail('malformed', 'body is not valid JSON');
    }
    const ids = (parsed as { ids?: unknown } | null)?.ids;
    if (!Array.isArray(ids)) fail('malformed', 'body must be {"ids": ["<64 hex>", ...]}');
    if (ids.length > MAX_FETCH_IDS) fail('batch_too_large', `a fetch names at most ${MAX_FETCH_IDS} ids`);
    const wanted = ids.map((id, i) => fromHex(id, 32, `ids[${i}]`));
    const found = (await deps.ranges.byIds(wanted)).filter((e) => deps.mirrors(tableFingerprintOf(e)));
    ctx.type = NDJSON_CONTENT_TYPE;
    ctx.set('X-P2pdb-Count', String(found.length));
    ctx.body = ndjson(found);
  });

  router.get('/sync/range', async (ctx) => {
    const query = ctx.query as Query;
    const table = fromHex(single(query, 'table'), 32, 'table');
    const prefix = checkPrefix(single(query, 'prefix') ?? '');
    const after = parseCursor(prefix, single(query, 'after'));
    const limitText = single(query, 'limit');
    let limit = DEFAULT_RANGE_LIMIT;
    if (limitText !== undefined) {
      if (!/^\d{1,5}$/.test(limitText) || Number(limitText) < 1 || Number(limitText) > MAX_RANGE_LIMIT) {
        fail('bad_request', `limit must be from 1 to ${MAX_RANGE_LIMIT}`);
      }
      limit = Number(limitText);
    }
    if (!deps.mirrors(table)) fail('table_not_allowed', 'this node does not mirror that table');
    const page = await deps.ranges.rangePage({ table, prefix, after, limit });
    ctx.type = NDJSON_CONTENT_TYPE;
    ctx.set('X-P2pdb-Count', String(page.entries.length));
    if (page.next !== null) ctx.set(NEXT_HEADER, page.next);
    ctx.body = ndjson(page.entries);
  });

  router.get('/index/', (ctx) => {
    ctx.body = {
      protocol: deps.protocol,
      tables: deps.server
        .tables()
        .filter((t) => deps.mirrors(t.table))
        .map((t) => ({ table: t.table.toString('hex'), count: t.count, fingerprint: t.fingerprint.toString('hex') })),
    };
  });

  return router;
}

function tableFingerprintOf(e: RangeEntry): Buffer {
  return sha256(e.entry.table);
}
