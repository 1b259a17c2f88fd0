/**
 * The end of `p2pdb db copy`: each database described on its own, then the two compared.
 *
 * A description walks every entry's (seq, table_id, id) in seq order, once, and sums the ids
 * per table as sync does (src/sync/sum256.ts), giving each table's sync fingerprint
 * (docs/PROTOCOL.md §9.2) and count from the rows themselves; beside them it keeps the
 * counters the store maintains (entry_totals, table_keys.entry_count), which must agree with
 * the walk. One pass over each database, run on both at once, rather than one walk per
 * table: a table's rows are spread over the whole file, so per-table walks would each read it.
 * Tables are matched by fingerprint, not by table_id, so the comparison would hold even if
 * ids had been renumbered.
 */
import { createHash } from 'node:crypto';
import { fail } from '../../errors.js';
import { fingerprintOfWords } from '../../sync/fingerprint.js';
import { addId, SUM_WORDS } from '../../sync/sum256.js';
import type { CopyEndpoint } from './endpoint.js';

const WALK_PAGE = 20_000;

export interface TableSummary {
  /** Entries the walk found. */
  count: number;
  /** table_keys.entry_count. */
  counter: number;
  /** Sync fingerprint of the table's ids (16 bytes, hex). */
  fingerprint: string;
}

export interface DatabaseSummary {
  /** entry_totals. */
  total: number;
  /** Entries the walk found. */
  walked: number;
  lastSeq: number;
  /** By table fingerprint (hex); tables with entries only. */
  tables: Map<string, TableSummary>;
  receivedSeconds: { rows: number; lastSecond: number; lastFirstSeq: number };
  /** SHA-256 of peers, sync_penalties and sync_cursors, rows in key order. */
  smallTables: string;
}

/** Describes one database; onRow is told how many entries were walked so far. */
export async function summarize(ep: CopyEndpoint, onRows?: (walked: number) => void): Promise<DatabaseSummary> {
  const keys = await ep.tableKeys();
  const slot = new Map<number, number>(keys.map((k, i) => [k.id, i]));
  const sums = new Uint32Array(keys.length * SUM_WORDS);
  const counts = new Array<number>(keys.length).fill(0);
  let walked = 0;
  let lastSeq = 0;
  for (;;) {
    const page = await ep.idWalk(lastSeq, WALK_PAGE);
    if (page.length === 0) break;
    for (const row of page) {
      const i = slot.get(row.table_id);
      if (i === undefined) fail('db_copy_mismatch', `${ep.label}: entry ${row.seq} refers to table_id ${row.table_id}, which table_keys lacks`);
      addId(sums, i * SUM_WORDS, row.id);
      counts[i]!++;
    }
    walked += page.length;
    lastSeq = page[page.length - 1]!.seq;
    onRows?.(walked);
  }
  const tables = new Map<string, TableSummary>();
  keys.forEach((k, i) => {
    if (counts[i] === 0 && k.entry_count === 0) return;
    tables.set(k.fingerprint.toString('hex'), { count: counts[i]!, counter: k.entry_count, fingerprint: fingerprintOfWords(sums, i * SUM_WORDS, counts[i]!).toString('hex') });
  });
  const small = await ep.smallTables();
  return {
    total: await ep.entryTotal(),
    walked,
    lastSeq,
    tables,
    receivedSeconds: await ep.receivedSecondsSummary(),
    smallTables: createHash('sha256').update(canonical(small)).digest('hex'),
  };
}

/** Rows as text both databases produce alike (Buffers as hex, numbers as numbers). */
export function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v && typeof v === 'object' && (v as { type?: unknown }).type === 'Buffer' && Array.isArray((v as { data?: unknown }).data)) {
      return `hex:${Buffer.from((v as { data: number[] }).data).toString('hex')}`;
    }
    return v;
  });
}

/** What differs between the two descriptions, and each one's own inconsistencies; empty when they match. */
export function compareSummaries(source: DatabaseSummary, target: DatabaseSummary): string[] {
  const problems: string[] = [];
  for (const [side, s] of [
    ['source', source],
    ['target', target],
  ] as const) {
    if (s.walked !== s.total) problems.push(`${side}: entry_totals says ${s.total} entries, the walk found ${s.walked}`);
    for (const [fp, t] of s.tables) if (t.count !== t.counter) problems.push(`${side}: table ${fp.slice(0, 12)} counts ${t.counter} entries, the walk found ${t.count}`);
  }
  if (source.total !== target.total) problems.push(`entries: source ${source.total}, target ${target.total}`);
  if (source.lastSeq !== target.lastSeq) problems.push(`last seq: source ${source.lastSeq}, target ${target.lastSeq}`);
  for (const fp of new Set([...source.tables.keys(), ...target.tables.keys()])) {
    const a = source.tables.get(fp);
    const b = target.tables.get(fp);
    if (!a || !b) problems.push(`table ${fp.slice(0, 12)} only in the ${a ? 'source' : 'target'}`);
    else if (a.count !== b.count) problems.push(`table ${fp.slice(0, 12)}: source ${a.count} entries, target ${b.count}`);
    else if (a.fingerprint !== b.fingerprint) problems.push(`table ${fp.slice(0, 12)}: fingerprints differ (source ${a.fingerprint}, target ${b.fingerprint})`);
  }
  const rs = (s: DatabaseSummary) => `${s.receivedSeconds.rows} rows, last ${s.receivedSeconds.lastSecond} → ${s.receivedSeconds.lastFirstSeq}`;
  if (rs(source) !== rs(target)) problems.push(`received_seconds: source ${rs(source)}, target ${rs(target)}`);
  if (source.smallTables !== target.smallTables) problems.push('peers or sync state differ');
  return problems;
}
