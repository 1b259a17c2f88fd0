/**
 * The store both databases share: group commit in front of the single writer, the reader,
 * the sync queries, the peer table and sync's state, each over the connections its backend
 * opened (sqlite/open.ts, postgres/open.ts).
 */
import type { ValidEntry } from '../entry/validate.js';
import { isP2pdbError, P2pdbError } from '../errors.js';
import type { Db, Dialect } from './db.js';
import { GroupCommit } from './group-commit.js';
import { IdRanges } from './id-ranges.js';
import type { KeyDirectory } from './keys.js';
import { PeerTable, type PeerTableOptions } from './peer-table.js';
import { RangeQueries } from './range-queries.js';
import { EntryReader } from './reader.js';
import { SerialWrites } from './serial.js';
import { SyncStateTable } from './sync-state.js';
import type { EntryFilter, EntryPage, InsertOutcome, Store, StoredListener, StoredNotice, TableCount } from './types.js';
import type { EntryWriter } from './writer.js';

export interface StoreParts {
  backend: Dialect;
  /** Reads: entries, counts, sync queries. */
  read: Db;
  /** Small writes: the peer table and sync state. */
  small: Db;
  writer: EntryWriter;
  keys: KeyDirectory;
  /** Most entries per group-commit transaction (a single larger insert() call still commits whole). */
  maxBatchEntries: number;
  /** Maps a database failure to the error callers see (e.g. the server is down: store_unavailable). */
  storeError(err: unknown, what: string): P2pdbError;
  /** Closes the backend's connections, after the writer has finished. */
  closeConnections(): Promise<void>;
}

export function asInternalError(err: unknown, what: string): P2pdbError {
  if (isP2pdbError(err)) return err;
  const message = err instanceof Error ? err.message : String(err);
  return Object.assign(new P2pdbError('internal', `${what}: ${message}`), { cause: err });
}

export class KnexStore implements Store {
  readonly backend: Dialect;
  readonly ranges: RangeQueries;
  readonly idIndex: IdRanges;
  readonly syncState: SyncStateTable;
  private readonly reader: EntryReader;
  private readonly smallWrites = new SerialWrites();
  private readonly queue: GroupCommit<ValidEntry, InsertOutcome>;
  private readonly listeners = new Set<StoredListener>();
  private closing: Promise<void> | null = null;

  constructor(protected readonly parts: StoreParts) {
    this.backend = parts.backend;
    this.reader = new EntryReader(parts.read, parts.keys);
    this.ranges = new RangeQueries(parts.read);
    this.idIndex = new IdRanges(parts.read);
    this.syncState = new SyncStateTable(parts.small.knex, this.smallWrites);
    this.queue = new GroupCommit<ValidEntry, InsertOutcome>(async (calls) => {
      const committed: StoredNotice[] = [];
      let outcomes: InsertOutcome[][];
      try {
        outcomes = await parts.writer.write(calls, committed);
      } catch (err) {
        throw parts.storeError(err, 'store write failed');
      }
      this.notifyStored(committed);
      return outcomes;
    }, parts.maxBatchEntries);
  }

  async insert(entries: ValidEntry[]): Promise<InsertOutcome[]> {
    if (this.closing) throw new P2pdbError('internal', 'the store is closed');
    if (entries.length === 0) return [];
    return this.queue.submit(entries);
  }

  onStored(listener: StoredListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get listenerCount(): number {
    return this.listeners.size;
  }

  peers(opts: PeerTableOptions = {}): PeerTable {
    return new PeerTable(this.parts.small.knex, this.smallWrites, opts);
  }

  async lastSeq(): Promise<number> {
    const [row] = await this.parts.read.rows<{ seq: number | null }>('SELECT max(seq) AS seq FROM entries');
    return row?.seq ?? 0;
  }

  query(filter: EntryFilter): Promise<EntryPage> {
    return this.reader.query(filter);
  }

  explain(filter: EntryFilter): Promise<string[]> {
    return this.reader.explain(filter);
  }

  async count(): Promise<number> {
    const [row] = await this.parts.read.rows<{ entries: number }>('SELECT entries FROM entry_totals WHERE id = 1');
    return row?.entries ?? 0;
  }

  async countByTable(): Promise<TableCount[]> {
    return this.parts.read.rows<TableCount>('SELECT fingerprint, entry_count AS count FROM table_keys WHERE entry_count > 0 ORDER BY id');
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.queue.idle();
      await this.smallWrites.idle();
      await this.parts.writer.close();
      await this.parts.closeConnections();
    })();
    return this.closing;
  }

  /** Called after a commit, before the inserting callers are answered. */
  private notifyStored(stored: StoredNotice[]): void {
    if (stored.length === 0) return;
    for (const listener of this.listeners) {
      try {
        listener(stored);
      } catch {
        // A listener's failure must not fail a commit that has already happened.
      }
    }
  }
}
