/**
 * How a sync session talks to one peer: four calls (reconcile, fetch, range, put) over HTTP.
 * The HTTP encoding of those calls lives here once (httpSyncTransport); the bytes travel
 * through a RawRequester. The node's only requester is onionRequester: PeerClient, so SOCKS
 * and onion-only. Benchmarks may implement RawRequester over loopback themselves; the node
 * never builds one.
 */
import type http from 'node:http';
import { P2pdbError, fail } from '../errors.js';
import { PeerRefusedError, type PeerClient } from '../peers/peer-client.js';

export const SYNC_CONTENT_TYPE = 'application/octet-stream';
export const NDJSON_CONTENT_TYPE = 'application/x-ndjson';
/** Response header of GET /sync/range: the cursor to continue after; absent when the range is done. */
export const NEXT_HEADER = 'x-p2pdb-next';
/** A reconcile answer is small; anything near this is a broken or hostile peer. */
export const MAX_SYNC_MESSAGE_BYTES = 4 * 1024 * 1024;
/** A page or fetch answer: bounded by the server at 16 MiB of payloads plus their JSON. */
export const MAX_PAGE_ANSWER_BYTES = 48 * 1024 * 1024;

export interface RawRequest {
  method: 'GET' | 'POST';
  /** Path and query, starting with '/'. */
  path: string;
  body?: Buffer;
  contentType?: string;
  accept?: string;
  timeoutMs?: number;
  maxAnswerBytes?: number;
  signal?: AbortSignal;
}

export interface RawAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export type RawRequester = (req: RawRequest) => Promise<RawAnswer>;

export interface RangeRequest {
  table: Buffer;
  /** Hex nibbles; '' = the whole table. */
  prefix: string;
  /** The cursor of the previous page; null for the first. */
  after: string | null;
  limit: number;
}

export interface PutSummary {
  stored: number;
  duplicates: number;
  rejected: number;
}

export interface SyncTransport {
  /** POST /sync/: one reconciliation message, one reply. */
  reconcile(message: Uint8Array, signal?: AbortSignal): Promise<Uint8Array>;
  /** POST /sync/fetch: NDJSON of those of `ids` the peer holds. */
  fetch(ids: readonly Buffer[], signal?: AbortSignal): Promise<Buffer>;
  /** GET /sync/range: one NDJSON page and the cursor after it (null: done). */
  range(req: RangeRequest, signal?: AbortSignal): Promise<{ body: Buffer; next: string | null }>;
  /** POST /put/ with an NDJSON batch. */
  put(ndjson: Buffer, signal?: AbortSignal): Promise<PutSummary>;
}

export interface TransportTimeouts {
  /** One reconcile round trip. */
  messageMs: number;
  /** One fetch, page or push. */
  pageMs: number;
}

/**
 * Tor circuits that went stale can hang a request for about two minutes: each call has its own
 * deadline, far below that, and the session retries on a fresh request.
 */
export const DEFAULT_TIMEOUTS: TransportTimeouts = { messageMs: 30_000, pageMs: 60_000 };

function refused(what: string, answer: RawAnswer): PeerRefusedError {
  let code: string | undefined;
  let message = '';
  try {
    const error = (JSON.parse(answer.body.toString('utf8')) as { error?: { code?: unknown; message?: unknown } } | null)?.error;
    code = typeof error?.code === 'string' ? error.code.slice(0, 64) : undefined;
    message = typeof error?.message === 'string' ? error.message.slice(0, 300) : '';
  } catch {
    // not JSON: only the status is reported
  }
  return new PeerRefusedError(`${what} answered ${answer.status}${code ? ` ${code}` : ''}${message ? `: ${message}` : ''}`, answer.status, code);
}

function headerValue(headers: http.IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export function httpSyncTransport(send: RawRequester, timeouts: TransportTimeouts = DEFAULT_TIMEOUTS): SyncTransport {
  return {
    async reconcile(message, signal) {
      const answer = await send({
        method: 'POST',
        path: '/sync/',
        body: Buffer.from(message.buffer, message.byteOffset, message.byteLength),
        contentType: SYNC_CONTENT_TYPE,
        accept: SYNC_CONTENT_TYPE,
        timeoutMs: timeouts.messageMs,
        maxAnswerBytes: MAX_SYNC_MESSAGE_BYTES,
        ...(signal ? { signal } : {}),
      });
      if (answer.status !== 200) throw refused('POST /sync/', answer);
      return new Uint8Array(answer.body.buffer, answer.body.byteOffset, answer.body.byteLength);
    },
    async fetch(ids, signal) {
      const answer = await send({
        method: 'POST',
        path: '/sync/fetch',
        body: Buffer.from(JSON.stringify({ ids: ids.map((id) => id.toString('hex')) }), 'utf8'),
        contentType: 'application/json',
        accept: NDJSON_CONTENT_TYPE,
        timeoutMs: timeouts.pageMs,
        maxAnswerBytes: MAX_PAGE_ANSWER_BYTES,
        ...(signal ? { signal } : {}),
      });
      if (answer.status !== 200) throw refused('POST /sync/fetch', answer);
      return answer.body;
    },
    async range(req, signal) {
      const query = new URLSearchParams({ table: req.table.toString('hex'), prefix: req.prefix, limit: String(req.limit) });
      if (req.after !== null) query.set('after', req.after);
      const answer = await send({
        method: 'GET',
        path: `/sync/range?${query.toString()}`,
        accept: NDJSON_CONTENT_TYPE,
        timeoutMs: timeouts.pageMs,
        maxAnswerBytes: MAX_PAGE_ANSWER_BYTES,
        ...(signal ? { signal } : {}),
      });
      if (answer.status !== 200) throw refused('GET /sync/range', answer);
      const next = headerValue(answer.headers, NEXT_HEADER);
      if (next !== undefined && (next.length > 200 || !/^[\x21-\x7e]+$/.test(next))) fail('peer_bad_answer', 'GET /sync/range: the next cursor is not a token');
      return { body: answer.body, next: next === undefined || next === '' ? null : next };
    },
    async put(ndjson, signal) {
      const answer = await send({
        method: 'POST',
        path: '/put/',
        body: ndjson,
        contentType: NDJSON_CONTENT_TYPE,
        accept: 'application/json',
        timeoutMs: timeouts.pageMs,
        maxAnswerBytes: 8 * 1024 * 1024,
        ...(signal ? { signal } : {}),
      });
      if (answer.status !== 200) throw refused('POST /put/', answer);
      let parsed: { stored?: unknown; duplicates?: unknown; rejected?: unknown };
      try {
        parsed = JSON.parse(answer.body.toString('utf8')) as typeof parsed;
      } catch {
        throw new P2pdbError('peer_bad_answer', 'POST /put/ answered something other than JSON');
      }
      const n = (v: unknown) => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : 0);
      return { stored: n(parsed?.stored), duplicates: n(parsed?.duplicates), rejected: n(parsed?.rejected) };
    },
  };
}

/** The node's requester: every byte through PeerClient (tor's SOCKS port, onion URLs only). */
export function onionRequester(client: PeerClient, onion: string): RawRequester {
  return (req) =>
    client.requestRaw(onion, req.path, {
      method: req.method,
      ...(req.body ? { body: req.body } : {}),
      ...(req.contentType ? { contentType: req.contentType } : {}),
      ...(req.accept ? { accept: req.accept } : {}),
      ...(req.timeoutMs ? { timeoutMs: req.timeoutMs } : {}),
      ...(req.maxAnswerBytes ? { maxAnswerBytes: req.maxAnswerBytes } : {}),
      ...(req.signal ? { signal: req.signal } : {}),
    });
}
