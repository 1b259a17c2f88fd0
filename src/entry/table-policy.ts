/**
 * Which tables a node mirrors, or a peer claims to: '*' for every table, else the table
 * fingerprints (lower-case hex). One shape for the config, the entry policy, hellos and sync,
 * and one check, mirrors(), so that "does this node take table T" has a single answer.
 * Types and a pure check only: the browser client shares it (no Buffer, no node: imports).
 */

export type TableSet = '*' | readonly string[];

/**
 * Lists are looked up through a Set built once per list: the entry check runs for every entry
 * and a node may mirror a thousand tables. Keyed weakly by the list itself, so a list must not
 * change after it is first asked about (TableSet is readonly for that reason; config, hellos and
 * peer records make new lists rather than editing old ones).
 */
const lookups = new WeakMap<readonly string[], ReadonlySet<string>>();

/** Whether `tables` covers the table with this fingerprint (lower-case hex). */
export function mirrors(tables: TableSet, fingerprintHex: string): boolean {
  if (tables === '*') return true;
  let set = lookups.get(tables);
  if (!set) {
    set = new Set(tables);
    lookups.set(tables, set);
  }
  return set.has(fingerprintHex);
}
