/** Which tables two nodes reconcile, from our mirror policy and the peer's signed claim. Pure. */
import { mirrors, type TableSet } from '../entry/table-policy.js';

export interface SharedTables {
  tables: Buffer[];
  /** Both mirror '*': the peer may name tables we do not hold yet. */
  allTables: boolean;
}

/**
 * `held`: the tables we hold entries of (only needed when we mirror '*'). Null when nothing is
 * shared (then there is nothing to sync).
 */
export function sharedTables(ours: TableSet, theirs: TableSet, held: readonly Buffer[]): SharedTables | null {
  const hex = (list: readonly string[]) => [...new Set(list.map((t) => t.toLowerCase()))].sort();
  let tables: string[];
  let allTables = false;
  if (ours === '*' && theirs === '*') {
    tables = hex(held.map((b) => b.toString('hex')));
    allTables = true;
  } else if (ours === '*') {
    tables = hex(theirs as readonly string[]);
  } else if (theirs === '*') {
    tables = hex(ours);
  } else {
    const theirSet = new Set(theirs);
    tables = hex(ours).filter((t) => theirSet.has(t));
  }
  if (tables.length === 0 && !allTables) return null;
  return { tables: tables.map((t) => Buffer.from(t, 'hex')), allTables };
}

/** Whether a peer's claim covers a table (hex fingerprint). */
export function claims(theirs: TableSet | null, tableHex: string): boolean {
  return theirs !== null && mirrors(theirs, tableHex);
}
