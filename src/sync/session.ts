/**
 * One sync with one peer, in four steps: resume unfinished range pulls, reconcile the shared
 * tables, pull what the peer has and we lack (ids in batches, whole ranges page by page with a
 * saved cursor), push what we have and it lacks. A peer's answer goes to the Ingestor as it
 * came, with what was asked for (the ids requested, or the range's table and prefix): the
 * verification worker matches each line against that and checks the matched entries exactly as
 * a client's put, parsing and hashing each once; what does not match is never ingested.
 * Misbehaviour is counted in the report (offences); the caller turns it into penalty points.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { entryToJson } from '../entry/wire.js';
import { P2pdbError, isP2pdbError } from '../errors.js';
import type { BeforeStore, PeerIngest } from '../ingest/ingest.js';
import type { PeerRequest } from '../ingest/check-body.js';
import type { RangeCursorRecord } from '../store/sync-state.js';
import type { RangeEntry, RangeQueries } from '../store/range-queries.js';
import { emptyOffences, offenceOf, type Offences } from './penalties.js';
import type { RefusedIds } from './refused-ids.js';
import type { SyncTransport } from './transport.js';

/** What reconcile.ts's Reconciliation provides (see docs/PROTOCOL.md section 9). */
export interface SyncRangeLike {
  table: Buffer;
  prefix: string;
  count: number;
}

export interface Reconciler {
  first(): Promise<Uint8Array>;
  next(reply: Uint8Array): Promise<Uint8Array | null>;
  readonly need: Buffer[];
  readonly give: Buffer[];
  readonly needRanges: SyncRangeLike[];
  readonly giveRanges: SyncRangeLike[];
  readonly refusedTables: Buffer[];
  readonly stats: { roundTrips: number; bytesSent: number; bytesReceived: number };
}

export interface CursorStore {
  rangeCursors(peer: string): Promise<RangeCursorRecord[]>;
  saveRangeCursor(c: RangeCursorRecord): Promise<void>;
  clearRangeCursor(peer: string, table: Buffer, prefix: string): Promise<void>;
}

export interface SessionTuning {
  /** Ids per POST /sync/fetch. */
  fetchBatch: number;
  /** Entries per GET /sync/range page. */
  pageLimit: number;
  /** Entries per push (POST /put/), and at most pushBatchBytes of NDJSON. */
  pushBatch: number;
  pushBatchBytes: number;
  /** Ranges the peer lacks entirely are pushed up to this many entries; larger ones it pulls itself (with its cursor). */
  pushRangeMax: number;
  /** Reconciliation round trips before the peer is taken to be stalling. */
  maxRoundTrips: number;
  /** Attempts per request when the peer is unreachable (a stale circuit): 1 + retries, pausing retryPauseMs × attempt. */
  retries: number;
  retryPauseMs: number;
}

export const DEFAULT_TUNING: SessionTuning = {
  fetchBatch: 500,
  pageLimit: 1000,
  pushBatch: 500,
  pushBatchBytes: 8 * 1024 * 1024,
  pushRangeMax: 2000,
  maxRoundTrips: 64,
  retries: 2,
  retryPauseMs: 1000,
};

export type SyncPhase = 'resume' | 'reconcile' | 'fetch' | 'range' | 'push' | 'done';

export interface SyncProgress {
  peer: string;
  phase: SyncPhase;
  /** Entries known to be missing here (needs + the peer's counts of needed ranges), once reconciled. */
  total: number;
  /** Entries received from the peer that matched what was asked (before verification). */
  fetched: number;
  /** Of those: stored, already here, refused by verification. */
  stored: number;
  duplicates: number;
  rejected: number;
  /** Entries pushed to the peer. */
  pushed: number;
}

export interface SyncReport extends SyncProgress {
  tables: number;
  roundTrips: number;
  bytesSent: number;
  bytesReceived: number;
  /** Range pulls continued from a saved cursor, and the entries they brought. */
  resumed: number;
  resumedFetched: number;
  /** Ranges the peer lacks that were too large to push (it pulls them). */
  leftForPeer: number;
  refusedTables: number;
  offences: Offences;
  durationMs: number;
}

export interface SessionDeps {
  peer: string;
  transport: SyncTransport;
  /** Matches a peer's answer against the request, verifies and stores it (Ingestor.ingestPeerBody). */
  ingest(raw: Buffer, request: PeerRequest, beforeStore?: BeforeStore): Promise<PeerIngest>;
  ranges: RangeQueries;
  cursors: CursorStore;
  /** Tables to reconcile (shared by policy and the peer's claim) and whether to let the peer name more (we mirror '*'). */
  tables: Buffer[];
  allTables: boolean;
  mirrors(table: Buffer): boolean;
  reconciler(opts: { tables: Buffer[]; allTables: boolean }): Reconciler;
  /** The peer's required proof bits ≥ ours: its entries below our bits are then its fault. */
  peerRequiresAtLeastOurBits: boolean;
  /** Ids refused before (by any peer): not fetched again, and refusals are added here. */
  refused?: RefusedIds;
  /** Called with the ids of the peer's valid entries just before they are stored (so fresh-entry pushes skip it). */
  noteOrigin?(ids: Buffer[], peer: string): void;
  onProgress?(p: SyncProgress): void;
  tuning?: Partial<SessionTuning>;
  signal?: AbortSignal;
  clock?: () => number;
}

/** The partial report a failed session attached to its error, if any. */
export function reportOfFailure(err: unknown): SyncReport | undefined {
  return (err as { syncReport?: SyncReport } | null)?.syncReport;
}

/** A report with nothing done yet (also the whole report of a sync with no shared tables). */
export function emptyReport(peer: string, phase: SyncPhase = 'done', tables = 0): SyncReport {
  return {
    peer,
    phase,
    total: 0,
    fetched: 0,
    stored: 0,
    duplicates: 0,
    rejected: 0,
    pushed: 0,
    tables,
    roundTrips: 0,
    bytesSent: 0,
    bytesReceived: 0,
    resumed: 0,
    resumedFetched: 0,
    leftForPeer: 0,
    refusedTables: 0,
    offences: emptyOffences(),
    durationMs: 0,
  };
}

/** Runs one session; rejects on a transport failure or a malformed peer message (the caller penalises and backs off). */
export async function runSyncSession(deps: SessionDeps): Promise<SyncReport> {
  const session = new Session(deps);
  try {
    await session.resume();
    const plan = await session.reconcile();
    await session.pull(plan);
    await session.push(plan);
    session.progress('done');
    return session.report;
  } catch (err) {
    // The caller penalises what happened before the failure too.
    if (err !== null && typeof err === 'object') Object.assign(err, { syncReport: session.report });
    throw err;
  } finally {
    session.finish();
  }
}

/** What reconciliation found: what to pull from the peer and what to push to it. */
interface Plan {
  need: Buffer[];
  needRanges: SyncRangeLike[];
  give: Buffer[];
  giveRanges: SyncRangeLike[];
}

/** Outcomes of one answer's entries. `fetched`: matched and not skipped (what was ingested). */
interface Tally {
  fetched: number;
  stored: number;
  duplicates: number;
  rejected: number;
}

/** One answer of the peer, ingested: how many lines matched (skipped ones included), their ids, and the tally. */
interface Ingested {
  matched: number;
  matchedIds: Uint8Array;
  tally: Tally;
}

/** The state of one session and its steps; runSyncSession calls them in order. */
class Session {
  readonly report: SyncReport;
  private readonly t: SessionTuning;
  private readonly clock: () => number;
  private readonly started: number;

  constructor(private readonly deps: SessionDeps) {
    this.t = { ...DEFAULT_TUNING, ...deps.tuning };
    this.clock = deps.clock ?? Date.now;
    this.started = this.clock();
    this.report = emptyReport(deps.peer, 'resume', deps.tables.length);
  }

  private get offences(): Offences {
    return this.report.offences;
  }

  progress(phase: SyncPhase): void {
    const report = this.report;
    report.phase = phase;
    if (this.deps.onProgress) {
      const { peer, total, fetched, stored, duplicates, rejected, pushed } = report;
      this.deps.onProgress({ peer, phase, total, fetched, stored, duplicates, rejected, pushed });
    }
  }

  finish(): void {
    this.report.durationMs = this.clock() - this.started;
  }

  // ---- The steps.

  /** 1. Range pulls an earlier session left unfinished (a restart mid-bootstrap); cursors of tables no longer shared go. */
  async resume(): Promise<void> {
    const { deps, report } = this;
    const shared = new Set(deps.tables.map((tb) => tb.toString('hex')));
    for (const c of await deps.cursors.rangeCursors(deps.peer)) {
      if (!deps.mirrors(c.table) || (!deps.allTables && !shared.has(c.table.toString('hex')))) {
        await deps.cursors.clearRangeCursor(deps.peer, c.table, c.prefix);
        continue;
      }
      report.resumed++;
      report.total += Math.max(0, c.claimed - c.fetched);
      report.resumedFetched += await this.pullRange({ table: c.table, prefix: c.prefix, count: c.claimed }, c.cursor, c.fetched);
    }
  }

  /** 2. Reconciliation: round trips until both sides know the difference. */
  async reconcile(): Promise<Plan> {
    const { deps, report, offences, t } = this;
    this.progress('reconcile');
    const rec = deps.reconciler({ tables: deps.tables, allTables: deps.allTables });
    let message: Uint8Array | null = await rec.first();
    let rounds = 0;
    while (message) {
      if (++rounds > t.maxRoundTrips) {
        offences.malformed++;
        throw new P2pdbError('peer_bad_answer', `reconciliation did not finish within ${t.maxRoundTrips} round trips`);
      }
      const outgoing: Uint8Array = message;
      const reply = await this.call(() => deps.transport.reconcile(outgoing, deps.signal));
      try {
        message = await rec.next(reply);
      } catch (err) {
        if (isP2pdbError(err)) offences.malformed++;
        throw err;
      }
    }
    report.roundTrips = rec.stats.roundTrips;
    report.bytesSent = rec.stats.bytesSent;
    report.bytesReceived = rec.stats.bytesReceived;
    report.refusedTables = rec.refusedTables.length;
    const needRanges = rec.needRanges.filter((r) => deps.mirrors(r.table));
    offences.wrongTable += rec.needRanges.length - needRanges.length;
    const refused = deps.refused;
    const need = refused ? rec.need.filter((id) => !refused.has(id)) : rec.need;
    report.total += need.length + needRanges.reduce((n, r) => n + r.count, 0);
    return { need, needRanges, give: rec.give, giveRanges: rec.giveRanges };
  }

  /** 3. Pull: missing ids in batches, then missing ranges page by page. */
  async pull(plan: Plan): Promise<void> {
    this.progress('fetch');
    await this.fetchIds(plan.need);
    for (const range of plan.needRanges) await this.pullRange(range, null, 0);
  }

  /** 4. Push: single ids, and whole ranges up to pushRangeMax (the peer pulls larger ones). */
  async push(plan: Plan): Promise<void> {
    const { deps, t } = this;
    for (let i = 0; i < plan.give.length; i += t.fetchBatch) await this.pushEntries(await deps.ranges.byIds(plan.give.slice(i, i + t.fetchBatch)));
    for (const range of plan.giveRanges) {
      if (range.count > t.pushRangeMax) {
        this.report.leftForPeer++;
        continue;
      }
      let after: Parameters<RangeQueries['rangePage']>[0]['after'] = null;
      for (;;) {
        const page = await deps.ranges.rangePage({ table: range.table, prefix: range.prefix, after, limit: t.pushBatch });
        await this.pushEntries(page.entries);
        const last = page.entries[page.entries.length - 1];
        if (page.next === null || !last) break;
        after = range.prefix === '' ? { seq: last.seq } : { id: last.id };
      }
    }
  }

  // ---- Their parts.

  private checkAbort(): void {
    if (this.deps.signal?.aborted) throw new P2pdbError('internal', 'sync stopped');
  }

  /** Retries a call when the peer could not be reached (a stale circuit); anything else is final. */
  private async call<T>(fn: () => Promise<T>): Promise<T> {
    const { deps, t } = this;
    for (let attempt = 0; ; attempt++) {
      this.checkAbort();
      try {
        return await fn();
      } catch (err) {
        if (!(isP2pdbError(err) && err.code === 'peer_unreachable') || attempt >= t.retries || deps.signal?.aborted) throw err;
      }
      // A moment for tor to give up on the circuit, then a fresh request.
      await delay(t.retryPauseMs * (attempt + 1), undefined, deps.signal ? { signal: deps.signal } : {}).catch(() => {});
    }
  }

  /**
   * Hands one answer of the peer to the Ingestor with what was asked for; it comes back
   * matched, verified and committed. Offences (lines that did not match, entries refused for
   * the sender's fault) are counted now, outcomes in the tally; refusals are remembered.
   */
  private async ingest(body: Buffer, request: PeerRequest): Promise<Ingested> {
    const { deps, offences } = this;
    const noteOrigin = deps.noteOrigin;
    const { match, results } = await deps.ingest(body, request, noteOrigin ? (ids) => noteOrigin(ids, deps.peer) : undefined);
    for (const k of Object.keys(match.offences) as (keyof typeof match.offences)[]) offences[k] += match.offences[k];
    const tally: Tally = { fetched: match.matched - match.skipped, stored: 0, duplicates: 0, rejected: 0 };
    for (const r of results) {
      if ('status' in r) {
        if (r.status === 'stored') tally.stored++;
        else tally.duplicates++;
      } else {
        tally.rejected++;
        if (r.id) deps.refused?.add(Buffer.from(r.id, 'hex'), r.error.code);
        const offence = offenceOf(r.error.code, deps.peerRequiresAtLeastOurBits);
        if (offence) offences[offence]++;
      }
    }
    return { matched: match.matched, matchedIds: match.matchedIds, tally };
  }

  private count(tally: Tally): void {
    const report = this.report;
    report.fetched += tally.fetched;
    report.stored += tally.stored;
    report.duplicates += tally.duplicates;
    report.rejected += tally.rejected;
  }

  /**
   * Pulls one range page by page from `after`. Pipelined one step: the next page is requested,
   * and then verified, while this one is still being verified and stored. A page is judged
   * (empty yet claiming more, too many in all) and its cursor saved once it and every page
   * before it are committed, so an interruption refetches at most the one page beyond the saved
   * cursor (stored already or not: ids are unique).
   */
  private async pullRange(range: SyncRangeLike, after: string | null, fetchedBefore: number): Promise<number> {
    const { deps, offences, t } = this;
    let cursor = after;
    let fetched = fetchedBefore;
    // A peer may gain entries meanwhile, not without bound: cap what one range may bring.
    const cap = Math.max(range.count * 2, range.count + 10_000);
    // Entries refused before are not verified again (a whole range comes back while we hold none of it).
    const skip = deps.refused?.under(range.prefix);
    const request: PeerRequest = { table: range.table, prefix: range.prefix, ...(skip && skip.length > 0 ? { skip } : {}) };
    const quiet = <T>(p: Promise<T>): Promise<T> => {
      p.catch(() => {}); // awaited below, or abandoned when an earlier step fails
      return p;
    };
    const requestPage = (from: string | null) =>
      quiet(this.call(() => deps.transport.range({ table: range.table, prefix: range.prefix, after: from, limit: t.pageLimit }, deps.signal)));

    /** A page being verified and stored, and the cursor after it. */
    interface Step {
      done: Promise<Ingested>;
      next: string | null;
    }
    const retire = async (step: Step) => {
      const page = await step.done;
      this.count(page.tally);
      fetched += page.matched;
      if (step.next !== null) {
        if (page.matched === 0) {
          offences.malformed++;
          throw new P2pdbError('peer_bad_answer', 'GET /sync/range: an empty page that claims more follows');
        }
        if (fetched > cap) {
          offences.lyingCount++;
          await deps.cursors.clearRangeCursor(deps.peer, range.table, range.prefix);
          throw new P2pdbError('peer_bad_answer', `GET /sync/range: the range brought more than ${cap} entries for a count of ${range.count}`);
        }
        await deps.cursors.saveRangeCursor({
          peer: deps.peer,
          table: range.table,
          prefix: range.prefix,
          cursor: step.next,
          claimed: range.count,
          fetched,
          updatedAt: this.clock(),
        });
      } else await deps.cursors.clearRangeCursor(deps.peer, range.table, range.prefix);
      this.progress('range');
    };

    let pending = requestPage(cursor);
    let storing: Step | null = null;
    try {
      for (;;) {
        this.checkAbort();
        const page = await pending;
        if (page.next !== null && page.next === cursor) {
          offences.malformed++;
          throw new P2pdbError('peer_bad_answer', 'GET /sync/range: the cursor did not advance');
        }
        if (page.next !== null) pending = requestPage(page.next);
        cursor = page.next;
        const step: Step = { done: quiet(this.ingest(page.body, request)), next: cursor };
        if (storing) await retire(storing);
        storing = step;
        if (cursor === null) break;
      }
    } catch (err) {
      // A session that ends leaves no write behind it: the page being stored settles first, so
      // what the store holds when the session rejects stays as it is.
      await (storing as Step | null)?.done.catch(() => undefined);
      throw err;
    }
    await retire(storing);
    // Entries are never deleted: a peer that serves fewer than it counted lied about the count.
    if (fetched < range.count) offences.lyingCount++;
    return fetched - fetchedBefore;
  }

  /** Fetches ids in batches; what a bounded answer left out is asked for once more. */
  private async fetchIds(ids: Buffer[]): Promise<void> {
    const { deps, offences, t } = this;
    let queue = ids;
    let retried = false;
    while (queue.length > 0) {
      const missing: Buffer[] = [];
      for (let i = 0; i < queue.length; i += t.fetchBatch) {
        this.checkAbort();
        const batch = queue.slice(i, i + t.fetchBatch);
        const body = await this.call(() => deps.transport.fetch(batch, deps.signal));
        const got = await this.ingest(body, { ids: Buffer.concat(batch) });
        this.count(got.tally);
        const served = Buffer.from(got.matchedIds.buffer, got.matchedIds.byteOffset, got.matchedIds.byteLength);
        const wanted = new Map(batch.map((id) => [id.toString('latin1'), id]));
        for (let at = 0; at + 32 <= served.length; at += 32) wanted.delete(served.toString('latin1', at, at + 32));
        missing.push(...wanted.values());
        this.progress('fetch');
      }
      // The server stops a fetch answer at a byte bound: ask once more for what it left out.
      if (missing.length === 0) break;
      if (retried || missing.length === queue.length) {
        offences.lyingCount++;
        break;
      }
      retried = true;
      queue = missing;
    }
  }

  private async pushEntries(entries: RangeEntry[]): Promise<void> {
    const { deps, t } = this;
    let lines: string[] = [];
    let bytes = 0;
    const flush = async () => {
      if (lines.length === 0) return;
      const body = Buffer.from(lines.join('\n') + '\n', 'utf8');
      lines = [];
      bytes = 0;
      this.checkAbort();
      await this.call(() => deps.transport.put(body, deps.signal));
      this.progress('push');
    };
    for (const e of entries) {
      const line = JSON.stringify(entryToJson(e.entry, e.id));
      if (lines.length >= t.pushBatch || (lines.length > 0 && bytes + line.length > t.pushBatchBytes)) await flush();
      lines.push(line);
      bytes += line.length + 1;
      this.report.pushed++;
    }
    await flush();
  }
}
