/**
 * GET /subscribe/: the /get/ filters as a Server-Sent Events stream. Each subscriber replays
 * what is stored after its cursor (Last-Event-ID, else `after=`), then follows store.onStored.
 * A commit only wakes a subscriber; what it sends always comes from store.query with its
 * cursor, so the filter logic is exactly /get/'s and a burst of commits costs one query.
 *
 * Memory per subscriber is bounded: an event is written only while less than `highWaterBytes`
 * wait unsent, so a subscriber holds at most that plus one event and one page of the store.
 * A reader whose unsent data stays above the mark without shrinking for `stallMs` is dropped
 * (its slot is freed); it may resume by Last-Event-ID.
 *
 * Node's server timeouts (headersTimeout, requestTimeout, keepAliveTimeout in node.ts) bound
 * receiving a request and idle keep-alive sockets, not a response being written: a stream
 * outlives all three (checked on Node 20), so they stay as they are.
 */
import Router from '@koa/router';
import type { ServerResponse } from 'node:http';
import { P2pdbError, fail } from '../../errors.js';
import type { EntryFilter, EntryStore, StoredNotice } from '../../store/types.js';
import type { Logger } from '../../util/log.js';
import { filterFromQuery, storedEntryToJson } from './get.js';

export interface SubscribeOptions {
  /** Concurrent streams; past it: 503 too_many_subscribers. */
  maxSubscribers: number;
  /** Entries per store query while catching up. */
  pageSize: number;
  /** Interval of `: keepalive` comments (an idle Tor circuit or proxy must see traffic). */
  keepaliveMs: number;
  /** Write no more while this much is unsent. */
  highWaterBytes: number;
  /** Drop the reader when unsent data above the mark has not shrunk for this long. */
  stallMs: number;
}

export const DEFAULT_SUBSCRIBE_OPTIONS: SubscribeOptions = {
  maxSubscribers: 256,
  pageSize: 50,
  keepaliveMs: 15_000,
  highWaterBytes: 256 * 1024,
  // Tor circuits can be slow, but a reader that takes nothing for a minute is gone.
  stallMs: 60_000,
};

export interface SubscribeDeps {
  store: EntryStore;
  log: Logger;
  now?: () => number;
  options?: Partial<SubscribeOptions>;
  /** Aborted when the node shuts down: every stream ends so the server can close. */
  shutdown?: AbortSignal;
}

/** The live streams of one app; exposed for tests and status. */
export interface SubscriptionCounter {
  readonly active: number;
}

type Query = Record<string, string | string[] | undefined>;

/** The Last-Event-ID header as a cursor; undefined when absent. */
export function cursorFromHeader(value: string | string[] | undefined): string | undefined {
  if (value === undefined || value === '') return undefined;
  if (Array.isArray(value) || !/^\d{1,16}$/.test(value.trim())) fail('bad_request', 'Last-Event-ID must be a seq cursor (a non-negative integer)');
  return value.trim();
}

/**
 * The /get/ filter of a subscription (pure). `limit` is not used and is ignored; a
 * Last-Event-ID header wins over `after=` (EventSource resends the original URL on reconnect).
 * hasCursor is false when neither was given: the stream then starts at the newest entry.
 */
export function subscribeFilter(query: Query, lastEventId: string | undefined, now: number, pageSize: number): { filter: EntryFilter; hasCursor: boolean } {
  const q: Query = { ...query };
  delete q.limit;
  if (lastEventId !== undefined) q.after = lastEventId;
  const filter = filterFromQuery(q, now);
  filter.limit = pageSize;
  const hasCursor = filter.afterSeq !== undefined;
  return { filter, hasCursor };
}

/** Whether a committed entry could pass the filter: a cheap pre-check that never says no wrongly. */
export function mayMatch(filter: EntryFilter, notice: StoredNotice): boolean {
  if (filter.afterSeq !== undefined && notice.seq <= filter.afterSeq) return false;
  if (filter.receivedSince !== undefined && notice.receivedAt < filter.receivedSince) return false;
  if (filter.ids && !filter.ids.some((id) => id.equals(notice.entry.id))) return false;
  if (filter.recipients && !filter.recipients.some((r) => r.equals(notice.entry.entry.to))) return false;
  if (filter.tables && !filter.tables.some((t) => t.equals(notice.entry.tableFingerprint))) return false;
  return true;
}

/** One SSE event for a stored entry, as the contract fixes it. */
export function entryEvent(seq: number, json: unknown): string {
  return `id: ${seq}\nevent: entry\ndata: ${JSON.stringify(json)}\n\n`;
}

export const KEEPALIVE_COMMENT = ': keepalive\n\n';

export function subscribeRoutes(deps: SubscribeDeps): { router: Router; counter: SubscriptionCounter } {
  const opts: SubscribeOptions = { ...DEFAULT_SUBSCRIBE_OPTIONS, ...deps.options };
  const now = deps.now ?? Date.now;
  const live = new Set<() => void>();
  deps.shutdown?.addEventListener('abort', () => {
    for (const end of [...live]) end();
  }, { once: true });
  const router = new Router();

  router.get('/subscribe/', async (ctx) => {
    // Everything that can be refused is refused here, as a JSON error, before the stream starts.
    const { filter, hasCursor } = subscribeFilter(ctx.query, cursorFromHeader(ctx.get('last-event-id') || undefined), now(), opts.pageSize);
    if (ctx.method === 'HEAD') {
      // A HEAD has no body to stream into: answer what a GET would start with, hold nothing.
      ctx.status = 200;
      ctx.type = 'text/event-stream; charset=utf-8';
      return;
    }
    if (deps.shutdown?.aborted) fail('too_many_subscribers', 'the node is shutting down');
    if (live.size >= opts.maxSubscribers) {
      fail('too_many_subscribers', `this node serves at most ${opts.maxSubscribers} subscriptions at once; try again later`);
    }
    const res = ctx.res;
    const stream = new Subscription(deps.store, filter, res, opts, deps.log, () => live.delete(end));
    const end = () => stream.end();
    live.add(end);
    let started: boolean;
    try {
      started = await stream.start(hasCursor);
    } catch (e) {
      stream.end();
      throw e;
    }
    if (!started) fail('too_many_subscribers', 'the node is shutting down');
    ctx.respond = false; // the stream is written to the socket directly
  });
  return { router, counter: { get active() { return live.size; } } };
}

/** One subscriber: a cursor, a wake-up flag and the pump that sends pages. */
class Subscription {
  private cursor = 0;
  private wanted = false;
  private pumping = false;
  private ended = false;
  private unsubscribe: (() => void) | undefined;
  private keepalive: NodeJS.Timeout | undefined;
  private stallTimer: NodeJS.Timeout | undefined;
  private drainWaiter: (() => void) | undefined;

  constructor(
    private readonly store: EntryStore,
    private readonly filter: EntryFilter,
    private readonly res: ServerResponse,
    private readonly opts: SubscribeOptions,
    private readonly log: Logger,
    private readonly onEnd: () => void,
  ) {}

  /** Sends the headers and starts the pump; false when the stream ended before it began. */
  async start(hasCursor: boolean): Promise<boolean> {
    this.res.on('close', () => this.end());
    this.res.on('drain', () => this.drainWaiter?.());
    // Listen before the cursor is fixed, so nothing committed in between is missed.
    this.unsubscribe = this.store.onStored((notices) => {
      if (notices.some((n) => mayMatch({ ...this.filter, afterSeq: this.cursor }, n))) this.wake();
    });
    this.cursor = hasCursor ? this.filter.afterSeq! : await this.store.lastSeq();
    if (this.ended) return false;
    this.res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    this.res.flushHeaders();
    this.res.socket?.setNoDelay(true);
    this.keepalive = setInterval(() => {
      // Only when nothing waits: a comment behind unsent data proves nothing.
      if (this.res.writableLength === 0) this.res.write(KEEPALIVE_COMMENT);
    }, this.opts.keepaliveMs);
    this.keepalive.unref();
    // Without a cursor there is nothing to replay: the first query waits for a commit.
    if (hasCursor || this.wanted) this.wake();
    return true;
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.unsubscribe?.();
    clearInterval(this.keepalive);
    clearTimeout(this.stallTimer);
    this.drainWaiter?.();
    // Before the headers went out the route answers with an error instead.
    if (this.res.headersSent && !this.res.destroyed) this.res.end();
    this.onEnd();
  }

  private drop(reason: string): void {
    this.log.info('subscriber dropped', { reason, unsent_bytes: this.res.writableLength });
    this.ended = true; // before destroy: 'close' must not end() twice with a graceful end
    this.unsubscribe?.();
    clearInterval(this.keepalive);
    clearTimeout(this.stallTimer);
    this.drainWaiter?.();
    this.res.destroy();
    this.onEnd();
  }

  private wake(): void {
    this.wanted = true;
    // Before the headers are out the cursor is not fixed yet: start() wakes the pump itself.
    if (!this.pumping && this.res.headersSent) void this.pump();
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      while (this.wanted && !this.ended) {
        this.wanted = false;
        for (;;) {
          const page = await this.store.query({ ...this.filter, afterSeq: this.cursor });
          if (this.ended) return;
          for (const s of page.entries) {
            if (!(await this.writable())) return;
            this.res.write(entryEvent(s.seq, storedEntryToJson(s)));
            this.cursor = s.seq;
          }
          if (page.entries.length === 0 || page.nextAfterSeq === null) break;
        }
      }
    } catch (e) {
      const code = e instanceof P2pdbError ? e.code : 'internal';
      this.log.error('subscription failed', { code, error: (e as Error).message });
      this.drop('query failed');
    } finally {
      this.pumping = false;
    }
  }

  /** Waits until the socket has taken what was written (below the high-water mark); false when the stream ended. */
  private async writable(): Promise<boolean> {
    while (!this.ended && this.res.writableLength > this.opts.highWaterBytes) {
      const before = this.res.writableLength;
      await new Promise<void>((resolve) => {
        this.drainWaiter = resolve;
        this.stallTimer = setTimeout(resolve, this.opts.stallMs);
      });
      this.drainWaiter = undefined;
      clearTimeout(this.stallTimer);
      if (!this.ended && this.res.writableLength >= before && this.res.writableLength > this.opts.highWaterBytes) {
        this.drop(`no data read for ${this.opts.stallMs} ms`);
      }
    }
    return !this.ended;
  }
}
