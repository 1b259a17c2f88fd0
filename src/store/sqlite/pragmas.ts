/**
 * Per-connection settings, applied by the knex pool's afterCreate hook to every connection
 * it opens (pragmas other than journal_mode do not persist in the file).
 */
export type Durability = 'full' | 'normal';

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
