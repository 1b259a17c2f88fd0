/**
 * One sync with one peer: resume unfinished range pulls, reconcile the shared tables, pull what
 * the peer has and we lack (ids in batches, whole ranges page by page with a saved cursor),
 * push what we have and it lacks. Every entry from the peer goes through the Ingestor, checked
 * exactly as a client's put; before that, each line is matched against what was asked for
 * (the id requested, the range's table and prefix), and what does not match is never ingested.
 * Misbehaviour is counted in the report (offences); the caller turns it into penalty points.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { sha256 } from '../crypto/hash.js';
import { entryToJson } from '../entry/wire.js';
import { P2pdbError, isP2pdbError } from '../errors.js';
import type { BodyOptions, IngestResult } from '../ingest/ingest.js';
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
  ingest(raw: Buffer, opts: BodyOptions): Promise<IngestResult[]>;
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
  /** Called with the ids about to be ingested from the peer (so fresh-entry pushes skip it). */
  noteOrigin?(ids: Buffer[], peer: string): void;
  onProgress?(p: SyncProgress): void;
  tuning?: Partial<SessionTuning>;
  signal?: AbortSignal;
  clock?: () => number;
}

const HEX64 = /^[0-9a-f]{64}$/;

interface Line {
  text: string;
  id: Buffer;
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
  const t: SessionTuning = { ...DEFAULT_TUNING, ...deps.tuning };
  const clock = deps.clock ?? Date.now;
  const started = clock();
  const report = emptyReport(deps.peer, 'resume', deps.tables.length);
  const offences = report.offences;
  const progress = (phase: SyncPhase) => {
    report.phase = phase;
    if (deps.onProgress) {
      const { peer, total, fetched, stored, duplicates, rejected, pushed } = report;
      deps.onProgress({ peer, phase, total, fetched, stored, duplicates, rejected, pushed });
    }
  };
  const checkAbort = () => {
    if (deps.signal?.aborted) throw new P2pdbError('internal', 'sync stopped');
  };

  /** Retries a call when the peer could not be reached (a stale circuit); anything else is final. */
  async function call<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      checkAbort();
      try {
        return await fn();
      } catch (err) {
        if (!(isP2pdbError(err) && err.code === 'peer_unreachable') || attempt >= t.retries || deps.signal?.aborted) throw err;
      }
      // A moment for tor to give up on the circuit, then a fresh request.
      await delay(t.retryPauseMs * (attempt + 1), undefined, deps.signal ? { signal: deps.signal } : {}).catch(() => {});
    }
  }

  interface Tally {
    fetched: number;
    stored: number;
    duplicates: number;
    rejected: number;
  }

  /** Verifies and stores matched lines; counts offences now, outcomes in the tally. Resolves once committed. */
  async function ingestLines(lines: Line[]): Promise<Tally> {
    const tally: Tally = { fetched: lines.length, stored: 0, duplicates: 0, rejected: 0 };
    if (lines.length === 0) return tally;
    deps.noteOrigin?.(
      lines.map((l) => l.id),
      deps.peer,
    );
    const raw = Buffer.from(lines.map((l) => l.text).join('\n'), 'utf8');
    const results = await deps.ingest(raw, { kind: 'ndjson', maxEntries: lines.length });
    for (const r of results) {
      if ('status' in r) {
        if (r.status === 'stored') tally.stored++;
        else tally.duplicates++;
      } else {
        tally.rejected++;
        const line = lines[r.index];
        if (line) deps.refused?.add(line.id, r.error.code);
        const offence = offenceOf(r.error.code, deps.peerRequiresAtLeastOurBits);
        if (offence) offences[offence]++;
      }
    }
    return tally;
  }

  function count(tally: Tally): void {
    report.fetched += tally.fetched;
    report.stored += tally.stored;
    report.duplicates += tally.duplicates;
    report.rejected += tally.rejected;
  }

  /** Splits an NDJSON answer and keeps the lines whose claimed id passes `accept`; the rest are offences. */
  function matchLines(body: Buffer, accept: (id: Buffer, item: Record<string, unknown>) => keyof Offences | null): Line[] {
    const out: Line[] = [];
    for (const rawLine of body.toString('utf8').split('\n')) {
      const text = rawLine.trim();
      if (text === '') continue;
      let item: unknown;
      try {
        item = JSON.parse(text);
      } catch {
        offences.malformed++;
        continue;
      }
      const idText = (item as { id?: unknown } | null)?.id;
      if (typeof item !== 'object' || item === null || Array.isArray(item) || typeof idText !== 'string' || !HEX64.test(idText)) {
        offences.invalid++;
        continue;
      }
      const id = Buffer.from(idText, 'hex');
      const offence = accept(id, item as Record<string, unknown>);
      if (offence) {
        offences[offence]++;
        continue;
      }
      out.push({ text, id });
    }
    return out;
  }

  function tableOf(item: Record<string, unknown>): Buffer | null {
    return typeof item.table === 'string' ? sha256(Buffer.from(item.table, 'base64')) : null;
  }

  /**
   * Pulls one range page by page from `after`. Pipelined one step: the next page is requested,
   * and then verified, while this one is still being verified and stored. A page's cursor is
   * saved once it and every page before it are committed, so an interruption refetches at most
   * the one page beyond the saved cursor (stored already or not: ids are unique).
   */
  async function pullRange(range: SyncRangeLike, after: string | null, fetchedBefore: number): Promise<number> {
    let cursor = after;
    let fetched = fetchedBefore;
    // A peer may gain entries meanwhile, not without bound: cap what one range may bring.
    const cap = Math.max(range.count * 2, range.count + 10_000);
    const quiet = <T>(p: Promise<T>): Promise<T> => {
      p.catch(() => {}); // awaited below, or abandoned when an earlier step fails
      return p;
    };
    const request = (from: string | null) =>
      quiet(call(() => deps.transport.range({ table: range.table, prefix: range.prefix, after: from, limit: t.pageLimit }, deps.signal)));
    /** The page being stored while the next is verified: its tally and the cursor after it. */
    let storing: { done: Promise<Tally>; next: string | null; fetched: number } | null = null;

    const retire = async (step: { done: Promise<Tally>; next: string | null; fetched: number }) => {
      count(await step.done);
      if (step.next === null) await deps.cursors.clearRangeCursor(deps.peer, range.table, range.prefix);
      else {
        await deps.cursors.saveRangeCursor({
          peer: deps.peer,
          table: range.table,
          prefix: range.prefix,
          cursor: step.next,
          claimed: range.count,
          fetched: step.fetched,
          updatedAt: clock(),
        });
      }
      progress('range');
    };

    let pending = request(cursor);
    for (;;) {
      checkAbort();
      const page = await pending;
      if (page.next !== null && page.next === cursor) {
        offences.malformed++;
        throw new P2pdbError('peer_bad_answer', 'GET /sync/range: the cursor did not advance');
      }
      if (page.next !== null) pending = request(page.next);
      const seen = new Set<string>();
      const lines = matchLines(page.body, (id, item) => {
        if (!id.toString('hex').startsWith(range.prefix)) return 'unsolicited';
        const key = id.toString('latin1');
        if (seen.has(key)) return 'unsolicited';
        seen.add(key);
        const table = tableOf(item);
        return table && table.equals(range.table) ? null : 'wrongTable';
      });
      fetched += lines.length;
      cursor = page.next;
      // Entries refused before are not verified again (a whole range comes back while we hold none of it).
      const refused = deps.refused;
      const fresh = refused ? lines.filter((l) => !refused.has(l.id)) : lines;
      const step = { done: quiet(ingestLines(fresh)), next: cursor, fetched };
      if (storing) await retire(storing);
      storing = step;
      if (cursor === null) break;
      if (lines.length === 0) {
        offences.malformed++;
        throw new P2pdbError('peer_bad_answer', 'GET /sync/range: an empty page that claims more follows');
      }
      if (fetched > cap) {
        offences.lyingCount++;
        await deps.cursors.clearRangeCursor(deps.peer, range.table, range.prefix);
        throw new P2pdbError('peer_bad_answer', `GET /sync/range: the range brought more than ${cap} entries for a count of ${range.count}`);
      }
    }
    await retire(storing);
    // Entries are never deleted: a peer that serves fewer than it counted lied about the count.
    if (fetched < range.count) offences.lyingCount++;
    return fetched - fetchedBefore;
  }

  async function fetchIds(ids: Buffer[]): Promise<void> {
    let queue = ids;
    let retried = false;
    while (queue.length > 0) {
      const missing: Buffer[] = [];
      for (let i = 0; i < queue.length; i += t.fetchBatch) {
        checkAbort();
        const batch = queue.slice(i, i + t.fetchBatch);
        const wanted = new Map(batch.map((id) => [id.toString('latin1'), id]));
        const body = await call(() => deps.transport.fetch(batch, deps.signal));
        const lines = matchLines(body, (id) => (wanted.delete(id.toString('latin1')) ? null : 'unsolicited'));
        count(await ingestLines(lines));
        missing.push(...wanted.values());
        progress('fetch');
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

  async function pushEntries(entries: RangeEntry[]): Promise<void> {
    let lines: string[] = [];
    let bytes = 0;
    const flush = async () => {
      if (lines.length === 0) return;
      const body = Buffer.from(lines.join('\n') + '\n', 'utf8');
      lines = [];
      bytes = 0;
      checkAbort();
      await call(() => deps.transport.put(body, deps.signal));
      progress('push');
    };
    for (const e of entries) {
      const line = JSON.stringify(entryToJson(e.entry, e.id));
      if (lines.length >= t.pushBatch || (lines.length > 0 && bytes + line.length > t.pushBatchBytes)) await flush();
      lines.push(line);
      bytes += line.length + 1;
      report.pushed++;
    }
    await flush();
  }

  try {
    // 1. Range pulls an earlier session left unfinished (a restart mid-bootstrap).
    const shared = new Set(deps.tables.map((tb) => tb.toString('hex')));
    for (const c of await deps.cursors.rangeCursors(deps.peer)) {
      if (!deps.mirrors(c.table) || (!deps.allTables && !shared.has(c.table.toString('hex')))) {
        await deps.cursors.clearRangeCursor(deps.peer, c.table, c.prefix);
        continue;
      }
      report.resumed++;
      report.total += Math.max(0, c.claimed - c.fetched);
      report.resumedFetched += await pullRange({ table: c.table, prefix: c.prefix, count: c.claimed }, c.cursor, c.fetched);
    }

    // 2. Reconciliation.
    progress('reconcile');
    const rec = deps.reconciler({ tables: deps.tables, allTables: deps.allTables });
    let message: Uint8Array | null = await rec.first();
    let rounds = 0;
    while (message) {
      if (++rounds > t.maxRoundTrips) {
        offences.malformed++;
        throw new P2pdbError('peer_bad_answer', `reconciliation did not finish within ${t.maxRoundTrips} round trips`);
      }
      const outgoing: Uint8Array = message;
      const reply = await call(() => deps.transport.reconcile(outgoing, deps.signal));
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

    // 3. Pull.
    progress('fetch');
    await fetchIds(need);
    for (const range of needRanges) await pullRange(range, null, 0);

    // 4. Push: single ids, and whole ranges up to pushRangeMax (the peer pulls larger ones).
    if (rec.give.length > 0) {
      for (let i = 0; i < rec.give.length; i += t.fetchBatch) await pushEntries(await deps.ranges.byIds(rec.give.slice(i, i + t.fetchBatch)));
    }
    for (const range of rec.giveRanges) {
      if (range.count > t.pushRangeMax) {
        report.leftForPeer++;
        continue;
      }
      let after: Parameters<RangeQueries['rangePage']>[0]['after'] = null;
      for (;;) {
        const page = await deps.ranges.rangePage({ table: range.table, prefix: range.prefix, after, limit: t.pushBatch });
        await pushEntries(page.entries);
        const last = page.entries[page.entries.length - 1];
        if (page.next === null || !last) break;
        after = range.prefix === '' ? { seq: last.seq } : { id: last.id };
      }
    }
    progress('done');
    return report;
  } catch (err) {
    // The caller penalises what happened before the failure too.
    if (err !== null && typeof err === 'object') Object.assign(err, { syncReport: report });
    throw err;
  } finally {
    report.durationMs = clock() - started;
  }
}
