import Router from '@koa/router';
import { fail } from '../../errors.js';
import { fromHex, toBase64, toHex } from '../../util/bytes.js';
import type { EntryFilter, EntryStore, StoredEntry } from '../../store/types.js';
import type { StoredEntryJson } from '../../entry/types.js';

export const DEFAULT_GET_LIMIT = 100;
export const MAX_GET_LIMIT = 1000;
/** Lists travel in the query string, which Node caps at 16 KiB of headers. */
export const MAX_LIST_ITEMS = 200;

type Query = Record<string, string | string[] | undefined>;

function single(query: Query, name: string): string | undefined {
  const v = query[name];
  if (Array.isArray(v)) fail('bad_request', `${name} may be given once`);
  return v === undefined || v === '' ? undefined : v;
}

function nonNegativeInt(query: Query, name: string, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const v = single(query, name);
  if (v === undefined) return undefined;
  if (!/^\d{1,16}$/.test(v) || Number(v) > max) fail('bad_request', `${name} must be a non-negative integer`);
  return Number(v);
}

function hexList(query: Query, name: string): Buffer[] | undefined {
  const v = single(query, name);
  if (v === undefined) return undefined;
  const items = v.split(',').filter((s) => s !== '');
  // `tables=,` would be a filter that matches nothing (and, on /subscribe/, a stream slot held for nothing).
  if (items.length === 0) fail('bad_request', `${name} lists nothing: leave it out, or give at least one value`);
  if (items.length > MAX_LIST_ITEMS) fail('bad_request', `${name} holds at most ${MAX_LIST_ITEMS} items`);
  return items.map((s) => fromHex(s.toLowerCase(), 32, name));
}

/** The /get/ query as a store filter; pure, so it can be tested on its own. */
export function filterFromQuery(query: Query, now: number): EntryFilter {
  const secondsSince = nonNegativeInt(query, 'seconds_since');
  const afterSeq = nonNegativeInt(query, 'after');
  const tables = hexList(query, 'tables');
  const recipients = hexList(query, 'recipients');
  const ids = hexList(query, 'ids');
  const limit = nonNegativeInt(query, 'limit') ?? DEFAULT_GET_LIMIT;
  if (limit < 1 || limit > MAX_GET_LIMIT) fail('bad_request', `limit must be from 1 to ${MAX_GET_LIMIT}`);
  if (secondsSince === undefined && afterSeq === undefined && !tables && !recipients && !ids) {
    fail('bad_request', 'give at least one filter: seconds_since, after, tables, recipients or ids');
  }
  const filter: EntryFilter = { limit };
  if (secondsSince !== undefined) filter.receivedSince = now - secondsSince * 1000;
  if (afterSeq !== undefined) filter.afterSeq = afterSeq;
  if (tables) filter.tables = tables;
  if (recipients) filter.recipients = recipients;
  if (ids) filter.ids = ids;
  return filter;
}

export function storedEntryToJson(s: StoredEntry): StoredEntryJson {
  return {
    seq: String(s.seq),
    id: toHex(s.id),
    received_at: s.receivedAt,
    v: s.entry.version,
    table: toBase64(s.entry.table),
    to: toHex(s.entry.to),
    created_at: s.entry.createdAt,
    payload: toBase64(s.entry.payload),
    signature: toBase64(s.entry.signature),
    proof: toBase64(s.entry.proof),
  };
}

export function getRoutes(store: EntryStore, now: () => number = Date.now): Router {
  const router = new Router();
  router.get('/get/', async (ctx) => {
    const filter = filterFromQuery(ctx.query, now());
    const page = await store.query(filter);
    ctx.body = {
      entries: page.entries.map(storedEntryToJson),
      next: page.nextAfterSeq === null ? null : String(page.nextAfterSeq),
    };
  });
  return router;
}
