/**
 * Per-connection settings, applied by the knex pool's afterCreate hook to every connection
 * it opens (pragmas other than journal_mode do not persist in the file).
 */
export type Durability = 'full' | 'normal';

/** Page size of new files (bench/store.ts --page-size compares others). */
export const SQLITE_PAGE_SIZE = Number(process.env.P2PDB_SQLITE_PAGE_SIZE) || 8192;

export interface ConnectionSettings {
  durability: Durability;
  /** Page cache per connection. The random-id unique index must stay cached: ~45 MiB per million entries. */
  cacheMiB: number;
  /** WAL pages after which a commit checkpoints; chosen by measurement (scripts/bench/store.ts). */
  walAutocheckpointPages: number;
  busyTimeoutMs: number;
  /** Readers refuse writes, so a bug cannot sneak a second writer past the group commit. */
  role: 'writer' | 'reader';
}

export function pragmaSql(s: ConnectionSettings): string {
  const lines = [
    // Only takes effect on a new, empty file (before WAL mode is on): 4 KiB pages hold three
    // ~1.1 KB rows and leave a fifth of each page empty (281 of 1,469 bytes per entry, measured
    // with dbstat); 8 KiB pages hold seven and leave ~6%. Existing files keep their page size.
    ...(s.role === 'writer' ? [`PRAGMA page_size = ${SQLITE_PAGE_SIZE};`] : []),
    // WAL: readers never block the writer, and a commit is one sequential append (+ fsync).
    ...(s.role === 'writer' ? ['PRAGMA journal_mode = WAL;'] : []),
    // FULL fsyncs the WAL at every commit: an acknowledged entry survives power loss.
    // NORMAL survives a process crash but may lose the last commits on power loss.
    `PRAGMA synchronous = ${s.durability === 'full' ? 'FULL' : 'NORMAL'};`,
    'PRAGMA foreign_keys = ON;',
    `PRAGMA busy_timeout = ${Math.max(0, Math.trunc(s.busyTimeoutMs))};`,
    `PRAGMA cache_size = ${-Math.max(1, Math.trunc(s.cacheMiB * 1024))};`,
    `PRAGMA wal_autocheckpoint = ${Math.max(0, Math.trunc(s.walAutocheckpointPages))};`,
    'PRAGMA temp_store = MEMORY;',
    ...(s.role === 'reader' ? ['PRAGMA query_only = ON;'] : []),
  ];
  return lines.join('\n');
}
