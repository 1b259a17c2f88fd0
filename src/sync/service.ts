/**
 * The node's sync with its peers: runs sessions (one at a time per peer), turns a session's
 * offences into penalty points (sync state), refuses banned peers, and tells listeners
 * about progress and outcomes. The scheduler (scheduler.ts) and `p2pdb sync` both go through
 * syncNow.
 */
import { mirrors, type TableSet } from '../entry/table-policy.js';
import { P2pdbError, fail, isP2pdbError } from '../errors.js';
import { normalizeOnion } from '../peers/hello.js';
import type { PeerRecord, PeerTable } from '../store/peer-table.js';
import type { RangeQueries } from '../store/range-queries.js';
import type { PenaltyRule, SyncStateTable } from '../store/sync-state.js';
import { silentLogger, type Logger } from '../util/log.js';
import type { OriginLog } from './origins.js';
import { RefusedIds } from './refused-ids.js';
import { DEFAULT_PENALTY_RULE, penaltyPoints, POINTS, unbannedPeers } from './penalties.js';
import { emptyReport, reportOfFailure, runSyncSession, type Reconciler, type SessionDeps, type SessionTuning, type SyncProgress, type SyncReport } from './session.js';
import { sharedTables } from './shared-tables.js';
import type { SyncTransport } from './transport.js';

export interface SyncServiceDeps {
  peers: PeerTable;
  syncState: SyncStateTable;
  /** The transport to a peer (the node: httpSyncTransport over onionRequester). */
  transportFor(onion: string): SyncTransport;
  /** A peer's answer with what was asked for: matched, verified, stored (Ingestor.ingestPeerBody). */
  ingest: SessionDeps['ingest'];
  ranges: RangeQueries;
  /** This node's policy. */
  allowedTables: TableSet;
  powBits: number;
  /** Tables we hold entries of (SyncIndex.tables()), for the '*' ↔ '*' case. */
  heldTables(): Buffer[];
  reconciler(opts: { tables: Buffer[]; allTables: boolean }): Reconciler;
  origins?: OriginLog;
  log?: Logger;
  clock?: () => number;
  penaltyRule?: PenaltyRule;
  tuning?: Partial<SessionTuning>;
}

export interface SyncOutcome {
  peer: string;
  ok: boolean;
  report?: SyncReport;
  error?: { code: string; message: string };
  /** Penalty points added for this session, and whether the peer is now banned. */
  points: number;
  banned: boolean;
}

export interface SyncNowOptions {
  onProgress?(p: SyncProgress): void;
  signal?: AbortSignal;
}

export class SyncService {
  private readonly log: Logger;
  private readonly clock: () => number;
  private readonly rule: PenaltyRule;
  private readonly running = new Map<string, Promise<unknown>>();
  private readonly progressListeners = new Set<(p: SyncProgress) => void>();
  private readonly outcomeListeners = new Set<(o: SyncOutcome) => void>();
  private readonly abort = new AbortController();
  /** Shared by every session: an entry refused from one peer is not fetched from the next. */
  readonly refused = new RefusedIds();
  private stopped = false;

  constructor(private readonly deps: SyncServiceDeps) {
    this.log = deps.log ?? silentLogger;
    this.clock = deps.clock ?? Date.now;
    this.rule = deps.penaltyRule ?? DEFAULT_PENALTY_RULE;
  }

  /** Progress of every session (listeners must not throw). Returns an unsubscribe. */
  onProgress(listener: (p: SyncProgress) => void): () => void {
    this.progressListeners.add(listener);
    return () => this.progressListeners.delete(listener);
  }

  /** The outcome of every session, success or failure. */
  onOutcome(listener: (o: SyncOutcome) => void): () => void {
    this.outcomeListeners.add(listener);
    return () => this.outcomeListeners.delete(listener);
  }

  isRunning(onion: string): boolean {
    return this.running.has(onion);
  }

  /**
   * Syncs with a verified peer now (after the session already running with it, if any).
   * Rejects with peer_banned, not_found (unknown or unverified peer), or the session's failure.
   */
  async syncNow(value: string, opts: SyncNowOptions = {}): Promise<SyncReport> {
    if (this.stopped) fail('internal', 'sync has stopped');
    const onion = normalizeOnion(value) ?? fail('malformed', `not a v3 onion address: ${value.slice(0, 100)}`);
    for (let before = this.running.get(onion); before; before = this.running.get(onion)) await before.catch(() => {});
    const run = this.runSession(onion, opts);
    this.running.set(onion, run);
    try {
      return await run;
    } finally {
      if (this.running.get(onion) === run) this.running.delete(onion);
    }
  }

  private async runSession(onion: string, opts: SyncNowOptions): Promise<SyncReport> {
    const peer = await this.deps.peers.get(onion);
    if (!peer || !peer.verified || peer.tables === null) fail('not_found', `${onion} is not a verified peer (say hello first)`);
    const penalty = await this.deps.syncState.penaltyOf(onion);
    const now = this.clock();
    if (penalty.bannedUntil && penalty.bannedUntil > now) {
      fail('peer_banned', `${onion} is banned from sync for ${Math.ceil((penalty.bannedUntil - now) / 1000)} s (it sent invalid data)`);
    }
    const shared = sharedTables(this.deps.allowedTables, peer.tables, this.deps.heldTables());
    const signal = opts.signal ? AbortSignal.any([opts.signal, this.abort.signal]) : this.abort.signal;
    let report: SyncReport | undefined;
    try {
      report = shared
        ? await runSyncSession({
            peer: onion,
            transport: this.deps.transportFor(onion),
            ingest: this.deps.ingest,
            ranges: this.deps.ranges,
            cursors: this.deps.syncState,
            tables: shared.tables,
            allTables: shared.allTables,
            mirrors: (table) => this.mirrors(table),
            reconciler: this.deps.reconciler,
            peerRequiresAtLeastOurBits: (peer.powBits ?? 0) >= this.deps.powBits,
            refused: this.refused,
            ...(this.deps.origins ? { noteOrigin: (ids: Buffer[], from: string) => this.deps.origins!.note(ids, from) } : {}),
            onProgress: (p) => {
              opts.onProgress?.(p);
              for (const l of this.progressListeners) l(p);
            },
            signal,
            clock: this.clock,
            ...(this.deps.tuning ? { tuning: this.deps.tuning } : {}),
          })
        : emptyReport(onion);
    } catch (err) {
      const partial = reportOfFailure(err);
      const code = isP2pdbError(err) ? err.code : 'internal';
      // A reply the reconciliation could not parse is a malformed message, whoever noticed it.
      if (partial && code === 'peer_bad_answer' && partial.offences.malformed === 0) partial.offences.malformed++;
      const points = partial ? penaltyPoints(partial.offences, this.rule) : code === 'peer_bad_answer' ? POINTS.malformed : 0;
      const banned = await this.penalize(onion, points);
      const outcome: SyncOutcome = {
        peer: onion,
        ok: false,
        ...(partial ? { report: partial } : {}),
        error: { code, message: (err as Error).message },
        points,
        banned,
      };
      this.emit(outcome);
      this.log.info('sync failed', { peer: onion, code, points, banned, error: (err as Error).message });
      throw err;
    }
    const points = penaltyPoints(report.offences, this.rule);
    const banned = await this.penalize(onion, points);
    this.emit({ peer: onion, ok: true, report, points, banned });
    if (report.fetched > 0 || report.pushed > 0 || points > 0) {
      this.log.info('synced', {
        peer: onion,
        stored: report.stored,
        duplicates: report.duplicates,
        rejected: report.rejected,
        pushed: report.pushed,
        round_trips: report.roundTrips,
        ms: report.durationMs,
        ...(points > 0 ? { penalty: points, banned } : {}),
      });
    }
    return report;
  }

  private mirrors(table: Buffer): boolean {
    return mirrors(this.deps.allowedTables, table.toString('hex'));
  }

  private async penalize(onion: string, points: number): Promise<boolean> {
    if (points <= 0) return false;
    const state = await this.deps.syncState.penalize(onion, points, this.clock(), this.rule).catch((err: Error) => {
      this.log.warn('could not record a penalty', { peer: onion, error: err.message });
      return undefined;
    });
    const banned = Boolean(state?.bannedUntil && state.bannedUntil > this.clock());
    if (banned && state?.penalty === 0) this.log.warn('peer banned from sync', { peer: onion, until: new Date(state.bannedUntil!).toISOString() });
    return banned;
  }

  private emit(o: SyncOutcome): void {
    for (const l of this.outcomeListeners) {
      try {
        l(o);
      } catch {
        // a listener's failure is not the session's
      }
    }
  }

  /** Aborts sessions in flight and waits for them. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort(new P2pdbError('internal', 'sync stopped'));
    await Promise.allSettled([...this.running.values()]);
  }

  /**
   * Peers a scheduler may sync with now: verified, not banned, sharing tables, and not failing
   * their hellos (an offline peer would only tie up a slot until its requests time out; the
   * peering loop notices when it is back).
   */
  async candidates(): Promise<PeerRecord[]> {
    const held = this.deps.heldTables();
    const failing = this.deps.peers.limits.failingAfter;
    return (await unbannedPeers(this.deps.peers, this.deps.syncState, this.clock())).filter(
      (p) => p.failures < failing && p.tables !== null && sharedTables(this.deps.allowedTables, p.tables, held) !== null,
    );
  }
}
