/**
 * The node's sync index: per table, the prefix-tree aggregates of every stored id (in memory,
 * prefix-tree.ts), kept current from store.onStored, plus the store's id index for nodes
 * deeper than the tree (src/store/id-ranges.ts). Open once at startup, before serving sync:
 *
 *   const syncIndex = await SyncIndex.open({ store, dataDir, log }); // resolves when ready
 *   ... answerSync(syncIndex.view, body, scope) ...
 *   await syncIndex.close(); // before store.close(): writes the snapshot
 *
 * Startup: subscribe to onStored first (buffering), load DATA_DIR/sync-index.bin, catch up from
 * the store in seq order from the seq it covers, check per-table counts against the store at
 * one consistent point (a mismatch or a bad snapshot means a full rebuild), then apply the
 * buffered notices past what the scan covered: nothing is lost or counted twice.
 */
import path from 'node:path';
import { fail } from '../errors.js';
import type { IdRanges } from '../store/id-ranges.js';
import type { Store, StoredNotice } from '../store/types.js';
import { silentLogger, type Logger } from '../util/log.js';
import { EMPTY_FINGERPRINT, fingerprintOfWords } from './fingerprint.js';
import { prefixRange } from './prefix.js';
import { PrefixForest } from './prefix-tree.js';
import { decodeSnapshot, encodeSnapshot, readSnapshot, writeSnapshot } from './snapshot.js';
import { TreeView, type IdSource, type RangeHint, type SyncView } from './view.js';

export interface SyncIndexOptions {
  store: Pick<Store, 'onStored' | 'idIndex'>;
  dataDir: string;
  log?: Logger;
  /**
   * Snapshot after this many newly applied entries (default 1,000,000). Measured at 1 M stored
   * (bench index-cost): every 100,000 the snapshot writes (tens of MB, fsynced) cost ingest
   * 5-10%; after a crash, catching up 1 M entries from the store takes ~6 s at start.
   */
  snapshotEvery?: number;
  /** Test seam: runs after the index subscribed and before it scans the store. */
  beforeCatchUp?: () => Promise<void>;
}

export const SNAPSHOT_FILE = 'sync-index.bin';
const PAGE = 10_000;

/** Deep nodes from the store, through whichever index reads fewer rows (id-ranges.ts). */
class StoreIds implements IdSource {
  constructor(private readonly ranges: IdRanges) {}
  idsInRange(table: Buffer, prefix: string, limit: number, hint: RangeHint): Promise<Buffer[]> {
    const { lo, hi } = prefixRange(prefix);
    return this.ranges.idsInRange(table, lo, hi, {
      limit: limit >= Number.MAX_SAFE_INTEGER ? -1 : limit,
      plan: hint.tableCount <= hint.rangeEstimate ? 'by-table' : 'by-id',
    });
  }
}

export class SyncIndex {
  readonly view: SyncView;
  private forest = new PrefixForest();
  private appliedSeq = 0;
  private live = false;
  private buffered: { seq: number; table: Buffer; id: Buffer }[] = [];
  private readonly unsubscribe: () => void;
  private sinceSnapshot = 0;
  private writing: Promise<void> | null = null;
  private closed: Promise<void> | null = null;
  private readonly file: string;
  private readonly log: Logger;
  private readonly snapshotEvery: number;
  private readonly ranges: IdRanges;

  private constructor(private readonly opts: SyncIndexOptions) {
    this.file = path.join(opts.dataDir, SNAPSHOT_FILE);
    this.log = opts.log ?? silentLogger;
    this.snapshotEvery = opts.snapshotEvery ?? 1_000_000;
    this.ranges = opts.store.idIndex;
    const source = new StoreIds(this.ranges);
    // The view reads whatever forest is current (a rebuild replaces it), and only once it is:
    // an index still loading would describe a partial set, so it answers busy instead.
    this.view = new TreeView(() => this.readyForest(), source);
    this.unsubscribe = opts.store.onStored((stored) => this.onStored(stored));
  }

  /** Loads the snapshot and catches up with the store; resolves once the index is current. */
  static async open(opts: SyncIndexOptions): Promise<SyncIndex> {
    const index = SyncIndex.begin(opts);
    await index.ready;
    return index;
  }

  /**
   * Starts loading in the background: `ready` settles when the index is current. Until then
   * `isReady` is false and the index must not answer sync (its trees are incomplete); a full
   * rebuild reads every row (about a minute per 10 M entries), and a node serves puts and
   * reads meanwhile (`view`, `tables()` and `root()` answer busy until then). Entries stored meanwhile are buffered and applied, as in open().
   */
  static begin(opts: SyncIndexOptions): SyncIndex {
    const index = new SyncIndex(opts);
    index.ready = index.start().catch((err: unknown) => {
      index.unsubscribe();
      throw err;
    });
    index.ready.catch(() => undefined); // the caller decides what a failure means; never unhandled
    return index;
  }

  /** Settles once the index is current (rejects if loading failed or close() came first). */
  ready: Promise<void> = Promise.resolve();

  get isReady(): boolean {
    return this.live;
  }

  tables(): { table: Buffer; count: number; fingerprint: Buffer }[] {
    return this.readyForest()
      .entries()
      .filter((t) => t.tree.total > 0)
      .map(({ table }) => ({ table, ...this.root(table) }));
  }

  root(table: Buffer): { count: number; fingerprint: Buffer } {
    const tree = this.readyForest().tree(table);
    if (!tree || tree.total === 0) return { count: 0, fingerprint: EMPTY_FINGERPRINT };
    const s = tree.sumAt(0)!;
    return { count: tree.total, fingerprint: fingerprintOfWords(s.sums, s.off, tree.total) };
  }

  private readyForest(): PrefixForest {
    if (!this.live) fail('busy', 'this node is still building its sync index; retry later');
    return this.forest;
  }

  /** Highest store seq the index includes. */
  get coveredSeq(): number {
    return this.appliedSeq;
  }

  /** Stops following the store and writes the snapshot. Call before store.close(). */
  close(): Promise<void> {
    this.closed ??= (async () => {
      this.unsubscribe();
      await this.ready.catch(() => undefined); // a scan in progress stops at its next page
      await this.writing;
      if (this.live) await this.snapshot();
    })();
    return this.closed;
  }

  private async start(): Promise<void> {
    const t0 = performance.now();
    const bytes = await readSnapshot(this.file);
    let source = 'rebuild';
    if (bytes) {
      const s = decodeSnapshot(bytes);
      if ('error' in s) this.log.warn('sync index snapshot unusable, rebuilding', { reason: s.error });
      else {
        this.forest = s.forest;
        this.appliedSeq = s.coveredSeq;
        source = 'snapshot';
      }
    }
    await this.opts.beforeCatchUp?.();
    if (!(await this.catchUpAndCheck())) {
      this.log.warn('sync index snapshot disagrees with the store, rebuilding', { coveredSeq: this.appliedSeq });
      this.forest = new PrefixForest();
      this.appliedSeq = 0;
      source = 'rebuild';
      if (!(await this.catchUpAndCheck())) fail('internal', 'sync index: counts disagree with the store after a rebuild');
    }
    const caughtUp = this.appliedSeq;
    await this.catchUp(); // what was committed meanwhile
    this.live = true;
    this.apply(this.buffered);
    this.buffered = [];
    this.log.info('sync index ready', { source, coveredSeq: this.appliedSeq, caughtUp, ms: Math.round(performance.now() - t0) });
    if (source === 'rebuild') this.scheduleSnapshot();
  }

  /** Catches up to one consistent point of the store and compares per-table counts there. */
  private async catchUpAndCheck(): Promise<boolean> {
    const { lastSeq, counts } = await this.ranges.countsAt();
    if (this.appliedSeq > lastSeq) return false; // a snapshot from another (or a restored) store
    if (this.appliedSeq === 0 && lastSeq > 0) {
      // A rebuild: two index walks, not a read of every row (id-ranges.ts walkIds).
      await this.ranges.walkIds(lastSeq, (table, id) => this.forest.add(table, id), () => this.closed !== null);
      if (this.closed) fail('internal', 'sync index: closed while loading');
      this.appliedSeq = lastSeq;
    }
    await this.catchUp(lastSeq);
    const mine = this.forest.entries().filter((t) => t.tree.total > 0);
    if (mine.length !== counts.size) return false;
    return mine.every(({ table, tree }) => counts.get(table.toString('latin1')) === tree.total);
  }

  private async catchUp(upTo?: number): Promise<void> {
    for (;;) {
      if (this.closed) fail('internal', 'sync index: closed while loading');
      const rows = await this.ranges.pageBySeq(this.appliedSeq, PAGE, upTo);
      for (const r of rows) this.forest.add(r.table, r.id);
      if (rows.length > 0) this.appliedSeq = rows[rows.length - 1]!.seq;
      if (rows.length < PAGE) return;
    }
  }

  private onStored(stored: readonly StoredNotice[]): void {
    const rows = stored.map((n) => ({ seq: n.seq, table: n.entry.tableFingerprint, id: n.entry.id }));
    if (!this.live) {
      this.buffered.push(...rows);
      return;
    }
    this.apply(rows);
  }

  private apply(rows: readonly { seq: number; table: Buffer; id: Buffer }[]): void {
    for (const r of rows) {
      if (r.seq <= this.appliedSeq) continue; // already covered by the scan
      this.forest.add(r.table, r.id);
      this.appliedSeq = r.seq;
      this.sinceSnapshot++;
    }
    if (this.sinceSnapshot >= this.snapshotEvery) this.scheduleSnapshot();
  }

  private scheduleSnapshot(): void {
    if (this.writing || this.closed) return;
    this.writing = this.snapshot()
      .catch((err: unknown) => this.log.warn('sync index snapshot failed', { error: String(err) }))
      .finally(() => {
        this.writing = null;
      });
  }

  private async snapshot(): Promise<void> {
    // Encoded synchronously, so the leaves and the seq they cover describe the same moment.
    const bytes = encodeSnapshot(this.forest, this.appliedSeq);
    this.sinceSnapshot = 0;
    await writeSnapshot(this.file, bytes);
  }
}
