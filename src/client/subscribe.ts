/**
 * A live subscription to a node's GET /subscribe/ (Server-Sent Events) over node:http, so it
 * works on loopback and through a SOCKS agent to an onion alike. It reconnects with backoff and
 * resumes from the last seq it delivered (Last-Event-ID), dropping anything at or below it, so
 * a consumer sees every matching entry once, in order, across reconnects.
 */
import http from 'node:http';
import https from 'node:https';
import { StringDecoder } from 'node:string_decoder';
import type { StoredEntryJson } from '../entry/types.js';
import { P2pdbError, fail, httpStatusOf, type ErrorCode } from '../errors.js';
import type { GetFilters } from './node-api.js';
import { SseParser } from './sse.js';
import { routeFor } from './transport.js';

export type SubscribeFilters = Omit<GetFilters, 'limit' | 'after'>;

export interface SubscribeOptions {
  /** Resume after this seq (a previous entry's `seq`); '0' replays everything that matches. Without it: only new entries. */
  after?: string;
  signal?: AbortSignal;
  /** SOCKS agent (required for onion URLs) or any http.Agent. */
  agent?: http.Agent;
  /** First reconnect delay; doubles up to maxBackoffMs, ±20% jitter. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Reconnect when nothing (not even a keepalive) arrived for this long; the node sends one every 15 s. */
  idleTimeoutMs?: number;
  /** Called each time the stream is open (the node has fixed the cursor: later commits will arrive). */
  onOpen?: (info: { attempt: number; after: string | undefined }) => void;
  /** Called when a connection failed or ended and a reconnect is scheduled. */
  onReconnect?: (info: { error: unknown; delayMs: number; after: string | undefined }) => void;
}

/** Errors that a retry cannot fix: bad filters, bad URL, a node that is not p2pdb. */
function isFatal(e: unknown): boolean {
  if (!(e instanceof P2pdbError)) return false;
  return e.status >= 400 && e.status < 500 && e.code !== 'node_unreachable';
}

const MAX_EVENT_CHARS = 16 * 1024 * 1024;

function subscribeUrl(baseUrl: string, filters: SubscribeFilters): URL {
  const url = new URL(baseUrl.replace(/\/+$/, '') + '/subscribe/');
  if (filters.secondsSince !== undefined) url.searchParams.set('seconds_since', String(Math.max(0, Math.floor(filters.secondsSince))));
  if (filters.tables?.length) url.searchParams.set('tables', filters.tables.join(','));
  if (filters.recipients?.length) url.searchParams.set('recipients', filters.recipients.join(','));
  if (filters.ids?.length) url.searchParams.set('ids', filters.ids.join(','));
  return url;
}

function nodeError(status: number, body: string, host: string): P2pdbError {
  try {
    const err = (JSON.parse(body) as { error?: { code?: unknown; message?: unknown } }).error;
    if (err && typeof err.code === 'string' && err.code in httpStatusOf) {
      return new P2pdbError(err.code as ErrorCode, typeof err.message === 'string' ? err.message : 'the node refused the subscription');
    }
  } catch {
    /* not JSON: below */
  }
  return new P2pdbError(status >= 500 ? 'node_unreachable' : 'malformed', `${host} answered /subscribe/ with HTTP ${status}: is it a p2pdb node?`);
}

function abortableDelay(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Opens one stream; resolves with the response once the node answered 200 (headers only). */
function open(url: URL, after: string | undefined, opts: SubscribeOptions, idleTimeoutMs: number): Promise<{ req: http.ClientRequest; res: http.IncomingMessage }> {
  const route = routeFor(url, opts.agent);
  const lib = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.request(url, {
      method: 'GET',
      headers: { accept: 'text/event-stream', ...(after !== undefined ? { 'last-event-id': after } : {}) },
      ...(route.agent ? { agent: route.agent } : {}),
      ...(route.lookup ? { lookup: route.lookup } : {}),
    });
    req.setTimeout(idleTimeoutMs, () => req.destroy(new P2pdbError('node_unreachable', `${url.host}: nothing received for ${idleTimeoutMs} ms`)));
    req.on('error', (e) => reject(e instanceof P2pdbError ? e : new P2pdbError('node_unreachable', `cannot reach ${url.host}: ${(e as NodeJS.ErrnoException).code ?? e.message}`)));
    req.on('response', (res) => {
      if (res.statusCode === 200 && /^text\/event-stream/.test(res.headers['content-type'] ?? '')) {
        resolve({ req, res });
        return;
      }
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        if (body.length < 64 * 1024) body += d;
      });
      res.on('end', () => reject(nodeError(res.statusCode ?? 0, body, url.host)));
      res.on('error', (e) => reject(new P2pdbError('node_unreachable', `${url.host}: ${e.message}`)));
    });
    req.end();
  });
}

/**
 * The entries the node sends, as /get/ returns them, until the signal aborts (the iteration then
 * simply ends) or a fatal error (bad filters: 4xx) is thrown. Network errors, 503s and ended
 * streams are retried with backoff.
 */
export async function* subscribeEntries(baseUrl: string, filters: SubscribeFilters, opts: SubscribeOptions = {}): AsyncGenerator<StoredEntryJson> {
  // From JavaScript, `after` among the filters would be dropped silently: no replay, lost entries.
  if ('after' in (filters as Record<string, unknown>)) fail('bad_request', 'after is an option of subscribe, not a filter: subscribe(filters, { after })');
  const url = subscribeUrl(baseUrl, filters);
  routeFor(url, opts.agent); // refuse a bad onion route before the first attempt
  const minBackoff = opts.minBackoffMs ?? 500;
  const maxBackoff = opts.maxBackoffMs ?? 30_000;
  const idleTimeoutMs = opts.idleTimeoutMs ?? 45_000;
  const signal = opts.signal;
  let after = opts.after;
  let failures = 0;
  for (let attempt = 1; !signal?.aborted; attempt++) {
    let req: http.ClientRequest | undefined;
    const onAbort = () => req?.destroy();
    signal?.addEventListener('abort', onAbort, { once: true });
    let error: unknown;
    try {
      const opened = await open(url, after, opts, idleTimeoutMs);
      req = opened.req;
      if (signal?.aborted) return;
      failures = 0;
      opts.onOpen?.({ attempt, after });
      const parser = new SseParser();
      const decoder = new StringDecoder('utf8');
      for await (const chunk of opened.res as AsyncIterable<Buffer>) {
        for (const ev of parser.push(decoder.write(chunk))) {
          if (signal?.aborted) return;
          if (ev.event !== 'entry') continue;
          const json = JSON.parse(ev.data) as StoredEntryJson;
          const seq = /^\d+$/.test(ev.lastEventId) ? ev.lastEventId : String(json.seq);
          if (after !== undefined && Number(seq) <= Number(after)) continue; // already delivered
          after = seq;
          yield json;
        }
        if (parser.pendingChars > MAX_EVENT_CHARS) throw new P2pdbError('malformed', `${url.host} sent an event larger than ${MAX_EVENT_CHARS} characters`);
      }
      error = new P2pdbError('node_unreachable', `${url.host} ended the subscription`);
    } catch (e) {
      if (signal?.aborted) return;
      if (isFatal(e)) throw e;
      error = e;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      req?.destroy();
    }
    if (signal?.aborted) return;
    failures++;
    const base = Math.min(maxBackoff, minBackoff * 2 ** Math.min(failures - 1, 20));
    const delayMs = Math.round(base * (0.8 + Math.random() * 0.4));
    opts.onReconnect?.({ error, delayMs, after });
    await abortableDelay(delayMs, signal);
  }
}
