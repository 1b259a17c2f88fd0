/**
 * Copies a stopped node's store to another database (`p2pdb db copy`): SQLite → PostgreSQL,
 * PostgreSQL → SQLite, SQLite → SQLite, PostgreSQL → PostgreSQL.
 *
 * Entries keep their seq, received_at and every byte, and table keys their ids, so clients'
 * cursors and `since` queries mean the same on the new database, and the node's sync index
 * snapshot (DATA/sync-index.bin, which names the seq it covers) stays valid. The counters
 * (entry_totals, table_keys.entry_count) and received_seconds are written batch by batch in
 * the batch's transaction; peers and sync state are copied whole at the end.
 *
 * Resuming: every batch commits whole, so the target always holds a prefix of the source by
 * seq. A run first checks that what the target holds is such a prefix (same table keys, the
 * same number of entries up to its last seq, sampled rows byte-identical, including the last),
 * then continues after the target's last seq. A target holding anything else is refused.
 * Whatever the sample misses, the final verification (verify.ts) does not.
 */
import { statSync } from 'node:fs';
import path from 'node:path';
import { P2pdbError } from '../../errors.js';
import type { DatabaseLocator } from '../database-locator.js';
import { CopyEndpoint, ENTRY_COLUMNS, type EntryRow, type SmallTables, type TableKeyRow } from './endpoint.js';
import { PostgresCopyConnection } from './postgres.js';
import { SqliteCopyConnection } from './sqlite.js';
import { canonical, compareSummaries, summarize, type DatabaseSummary } from './verify.js';

export const DEFAULT_BATCH_ENTRIES = 5000;
/** Rows compared byte for byte when resuming, besides the first and the last. */
const RESUME_SAMPLES = 32;

export interface CopyProgress {
  phase: 'copying' | 'verifying' | 'done';
  /** Entries in the target (copied by this run or an earlier one). */
  copied: number;
  /** Entries in the source. */
  total: number;
  /** Entries the target already held when this run started. */
  resumedFrom: number;
  /** While verifying: entries walked on both sides, out of 2 × total. */
  verified: number;
}

export interface CopyOptions {
  source: DatabaseLocator;
  target: DatabaseLocator;
  /** Entries per transaction (default 5,000). */
  batchEntries?: number;
  /** Copy at most this many entries in this run, then stop (the next run continues). */
  limit?: number;
  /** Aborting stops the copy after the batch being written (the next run continues). */
  signal?: AbortSignal;
  onProgress?(p: CopyProgress): void;
}

export interface CopyResult {
  source: string;
  target: string;
  total: number;
  resumedFrom: number;
  /** Entries this run copied. */
  copied: number;
  /** False when stopped by limit: nothing was verified. */
  complete: boolean;
  tables: number;
  /** Wall time of the entries' copy, and of the verification. */
  copyMs: number;
  verifyMs: number;
}

/** Refuses a target that is the source itself, before either is opened. */
export function assertDifferent(source: DatabaseLocator, target: DatabaseLocator): void {
  const same = (): never => {
    throw new P2pdbError('db_copy_same_database', `the target is the source database itself (${describe(source)}); give another --to`);
  };
  if (source.kind === 'sqlite' && target.kind === 'sqlite') {
    if (path.resolve(source.filename) === path.resolve(target.filename)) same();
    const a = statSync(source.filename, { throwIfNoEntry: false });
    const b = statSync(target.filename, { throwIfNoEntry: false });
    if (a && b && a.dev === b.dev && a.ino === b.ino) same(); // a link to it
  }
  if (source.kind === 'postgres' && target.kind === 'postgres' && postgresKey(source.url) === postgresKey(target.url)) same();
}

function describe(l: DatabaseLocator): string {
  return l.kind === 'sqlite' ? l.filename : new URL(l.url).host + new URL(l.url).pathname;
}

/** Server and database of a URL, as far as the URL tells (the connected check in open() covers aliases). */
function postgresKey(url: string): string {
  const u = new URL(url);
  const db = decodeURIComponent(u.pathname.slice(1)) || decodeURIComponent(u.username);
  const host = u.hostname.toLowerCase().replace(/^localhost$/, '127.0.0.1');
  return `${host}:${u.port || '5432'}/${db}`;
}

async function connect(l: DatabaseLocator, role: 'source' | 'target'): Promise<SqliteCopyConnection | PostgresCopyConnection> {
  return l.kind === 'sqlite' ? SqliteCopyConnection.open(l.filename, role) : PostgresCopyConnection.connect(l.url);
}

/** Opens both sides, refusing the same database twice and databases a node is using. */
async function openBoth(opts: CopyOptions): Promise<{ source: CopyEndpoint; target: CopyEndpoint }> {
  assertDifferent(opts.source, opts.target);
  const opened: (SqliteCopyConnection | PostgresCopyConnection)[] = [];
  try {
    const source = await connect(opts.source, 'source');
    opened.push(source);
    const target = await connect(opts.target, 'target');
    opened.push(target);
    if (source instanceof PostgresCopyConnection && target instanceof PostgresCopyConnection) {
      // Two URLs can name one database (a host alias, another port forward): ask the server.
      if (await source.sees(target)) throw new P2pdbError('db_copy_same_database', `the target is the source database itself (${source.label}); give another --to`);
    }
    if (source instanceof PostgresCopyConnection) await source.hold('source');
    if (target instanceof PostgresCopyConnection) await target.hold('target');
    return { source: new CopyEndpoint(source), target: new CopyEndpoint(target) };
  } catch (err) {
    for (const c of opened.reverse()) await c.close().catch(() => undefined);
    throw err;
  }
}

function conflict(target: CopyEndpoint, why: string): never {
  throw new P2pdbError(
    'db_copy_target_conflict',
    `${target.label} holds other data than a part of this node's (${why}); copy to an empty database, or to the target of an interrupted copy of this same node`,
  );
}

function sameEntry(a: EntryRow, b: EntryRow): boolean {
  return ENTRY_COLUMNS.every((c) => {
    const x = a[c];
    const y = b[c];
    return Buffer.isBuffer(x) && Buffer.isBuffer(y) ? x.equals(y) : Number(x) === Number(y);
  });
}

/** Seqs compared when resuming: the first and the last the target holds, and some between. */
function sampleSeqs(last: number): number[] {
  const seqs = new Set<number>([1, last]);
  for (let k = 1; k <= RESUME_SAMPLES; k++) seqs.add(Math.max(1, Math.round((last * k) / (RESUME_SAMPLES + 1))));
  return [...seqs].sort((a, b) => a - b);
}

/** Refuses a target that is not a prefix of the source; returns the table keys it lacks. */
async function checkTarget(source: CopyEndpoint, target: CopyEndpoint, sourceKeys: TableKeyRow[], sourceLast: number, sourceSmall: SmallTables): Promise<{ last: number; missingKeys: TableKeyRow[] }> {
  const byId = new Map(sourceKeys.map((k) => [k.id, k]));
  const targetKeys = await target.tableKeys();
  for (const k of targetKeys) {
    const s = byId.get(k.id);
    if (!s || !s.fingerprint.equals(k.fingerprint) || !s.spki.equals(k.spki)) conflict(target, `its table key ${k.id} is not the source's`);
  }
  const have = new Set(targetKeys.map((k) => k.id));
  const missingKeys = sourceKeys.filter((k) => !have.has(k.id));
  const last = await target.lastSeq();
  const targetTotal = await target.entryTotal();
  if (last === 0) {
    if (targetTotal !== 0) conflict(target, `no entries, yet entry_totals says ${targetTotal}`);
    // Peers and sync state are copied after the last entry; a target with none of the
    // source's entries may hold them only from an earlier complete copy of an empty store.
    const small = await target.smallTables();
    if (Object.values(small).some((rows) => rows.length > 0) && canonical(small) !== canonical(sourceSmall)) conflict(target, 'peers or sync state of another node');
    return { last, missingKeys };
  }
  if (last > sourceLast) conflict(target, `its last seq ${last} is past the source's ${sourceLast}`);
  const expected = await source.countUpTo(last);
  if (targetTotal !== expected) conflict(target, `${targetTotal} entries up to seq ${last}, the source has ${expected}`);
  const seqs = sampleSeqs(last);
  const [a, b] = await Promise.all([source.entriesAt(seqs), target.entriesAt(seqs)]);
  if (a.length !== b.length) conflict(target, `its seqs differ from the source's around ${seqs.join(',')}`);
  a.forEach((row, i) => {
    if (!sameEntry(row, b[i]!)) conflict(target, `its entry at seq ${row.seq} differs from the source's`);
  });
  return { last, missingKeys };
}

export async function copyDatabase(opts: CopyOptions): Promise<CopyResult & { summary?: DatabaseSummary }> {
  const batch = Math.max(1, Math.floor(opts.batchEntries ?? DEFAULT_BATCH_ENTRIES));
  const { source, target } = await openBoth(opts);
  try {
    const [sourceKeys, sourceLast, total, sourceSmall] = await Promise.all([source.tableKeys(), source.lastSeq(), source.entryTotal(), source.smallTables()]);
    const { last: resumedAt, missingKeys } = await checkTarget(source, target, sourceKeys, sourceLast, sourceSmall);
    const resumedFrom = await target.entryTotal();
    await target.addTableKeys(missingKeys);

    const progress: CopyProgress = { phase: 'copying', copied: resumedFrom, total, resumedFrom, verified: 0 };
    opts.onProgress?.({ ...progress });
    const started = performance.now();
    let after = resumedAt;
    let copied = 0;
    const budget = opts.limit ?? Infinity;
    let stopped = false;
    // The next page is read while the current one is written: the two databases work at once.
    let next: Promise<EntryRow[]> | undefined = source.readEntries(after, Math.min(batch, budget));
    while (next) {
      const rows = await next;
      next = undefined;
      if (rows.length === 0) break;
      const end = rows[rows.length - 1]!.seq;
      const left = budget - copied - rows.length;
      if (left > 0) next = source.readEntries(end, Math.min(batch, left));
      // received_seconds rows that start inside this batch: looked up by their key, the batch's seconds.
      const seconds = (await source.receivedSeconds(Math.floor(rows[0]!.received_at / 1000), Math.floor(rows[rows.length - 1]!.received_at / 1000))).filter(
        (s) => s.first_seq > after && s.first_seq <= end,
      );
      await target.writeBatch(rows, seconds);
      after = end;
      copied += rows.length;
      progress.copied = resumedFrom + copied;
      opts.onProgress?.({ ...progress });
      if (opts.signal?.aborted) {
        await next?.catch(() => undefined);
        throw new P2pdbError('db_copy_interrupted', `interrupted after seq ${after} (${progress.copied} of ${total} entries in the target); run the same command again to continue`);
      }
      if (left <= 0 && after < sourceLast) stopped = true;
    }
    const copyMs = performance.now() - started;
    const base = { source: source.label, target: target.label, total, resumedFrom, copied, tables: sourceKeys.length, copyMs, verifyMs: 0 };
    if (stopped) return { ...base, complete: false };

    await target.replaceSmallTables(sourceSmall);
    await target.finish();
    progress.phase = 'verifying';
    opts.onProgress?.({ ...progress });
    const verifyStarted = performance.now();
    const walked = [0, 0];
    const report = (side: 0 | 1) => (n: number) => {
      walked[side] = n;
      progress.verified = walked[0]! + walked[1]!;
      opts.onProgress?.({ ...progress });
    };
    const [s, t] = await Promise.all([summarize(source, report(0)), summarize(target, report(1))]);
    const problems = compareSummaries(s, t);
    if (problems.length > 0) throw new P2pdbError('db_copy_mismatch', `verification failed: ${problems.slice(0, 10).join('; ')}${problems.length > 10 ? `; and ${problems.length - 10} more` : ''}`);
    progress.phase = 'done';
    opts.onProgress?.({ ...progress });
    return { ...base, complete: true, tables: s.tables.size, verifyMs: performance.now() - verifyStarted, summary: s };
  } finally {
    await target.close();
    await source.close();
  }
}
