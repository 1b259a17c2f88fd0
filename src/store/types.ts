import type { Entry } from '../entry/types.js';
import type { ValidEntry } from '../entry/validate.js';
import type { Dialect } from './db.js';
import type { IdRanges } from './id-ranges.js';
import type { PeerTable, PeerTableOptions } from './peer-table.js';
import type { RangeQueries } from './range-queries.js';
import type { SyncStateTable } from './sync-state.js';

export interface StoredEntry {
  /** Local sequence number: the order this node stored entries in; cursors are built on it. */
  seq: number;
  id: Buffer;
  /** Local receive time, ms since epoch; never decreases with seq. */
  receivedAt: number;
  entry: Entry;
}

/**
 * Filters of /get/. All given filters must hold; within a list any value matches, so an
 * empty list matches nothing, as does a list of tables this store has never seen.
 */
export interface EntryFilter {
  /** Only entries received at or after this time (ms since epoch). */
  receivedSince?: number;
  /** Only entries with seq greater than this (cursor). */
  afterSeq?: number;
  /** Table fingerprints. */
  tables?: Buffer[];
  /** Recipient fingerprints. */
  recipients?: Buffer[];
  ids?: Buffer[];
  limit: number;
}

export interface EntryPage {
  entries: StoredEntry[];
  /** seq of the last entry when more may follow, else null. */
  nextAfterSeq: number | null;
}

/** 'duplicate': the id was already stored, or appeared earlier in the same call or commit. */
export type InsertOutcome = 'stored' | 'duplicate';

export interface TableCount {
  /** SHA-256 of the table's SPKI DER. */
  fingerprint: Buffer;
  count: number;
}

/** An entry this store has just committed (durably), with the seq it was given. */
export interface StoredNotice {
  seq: number;
  receivedAt: number;
  entry: ValidEntry;
}

/**
 * Called after each commit that stored anything, in seq order, before the callers of
 * insert() are answered. Runs on the commit path: keep it cheap and never throw.
 */
export type StoredListener = (stored: readonly StoredNotice[]) => void;

export interface EntryStore {
  /**
   * Stores entries that have passed validation. Resolves once they are committed
   * (durable), one outcome per input in order. Concurrent calls are group-committed.
   */
  insert(entries: ValidEntry[]): Promise<InsertOutcome[]>;
  /** Ascending seq, at most `limit` entries. */
  query(filter: EntryFilter): Promise<EntryPage>;
  /** Entries stored, from counters kept in the insert transaction (no scan). */
  count(): Promise<number>;
  /** Entries per table that has any, from the same counters. */
  countByTable(): Promise<TableCount[]>;
  /** Registers a listener for newly stored entries (from any source); returns an unsubscribe. */
  onStored(listener: StoredListener): () => void;
  /** Highest seq stored, 0 when empty. */
  lastSeq(): Promise<number>;
  /** Waits for queued inserts to commit, then closes. */
  close(): Promise<void>;
}

/**
 * Everything a node keeps, behind one owner: entries (EntryStore), the pull queries of sync,
 * the id index sync's fingerprints are built from, the peer table and sync's own state. Each
 * consumer gets the small interface it needs; no module outside src/store writes SQL.
 */
export interface Store extends EntryStore {
  readonly backend: Dialect;
  /** Pages of a table's entries and entries by id, for the sync pull routes. */
  readonly ranges: RangeQueries;
  /** Ids by table and range, and the seq-ordered walk the sync index is built from. */
  readonly idIndex: IdRanges;
  /** Sync's stored state: penalties and bans per peer, resumable range-pull cursors. */
  readonly syncState: SyncStateTable;
  /** The peer table, seen from a node whose own address is `self` (never stored as a peer). */
  peers(opts?: PeerTableOptions): PeerTable;
  /** The plan of every statement query(filter) runs (diagnostics and tests). */
  explain(filter: EntryFilter): Promise<string[]>;
  /** Registered onStored listeners (tests check that subscriptions do not leak them). */
  readonly listenerCount: number;
}
