/**
 * What reconciliation reads: per table, the count and fingerprint of any prefix node, its 16
 * children, and the ids of a small node. reconcile.ts is pure over this interface; TreeView
 * implements it over the in-memory prefix tree (depth ≤ 4) plus an IdSource for deeper nodes:
 * the SQLite store in a node (sync-index.ts), a sorted in-memory set in tests and benchmarks.
 */
import { EMPTY_FINGERPRINT, fingerprintOfIds, fingerprintOfWords } from './fingerprint.js';
import { nibbleAt } from './prefix.js';
import { nodeKey, prefixIndex, TREE_DEPTH, type PrefixForest } from './prefix-tree.js';

export interface NodeSummary {
  count: number;
  fingerprint: Buffer;
}

export interface SyncView {
  /** Tables holding at least one id. */
  tableList(): Buffer[];
  node(table: Buffer, prefix: string): Promise<NodeSummary>;
  /** The 16 children of a node, in nibble order (count 0 for an empty child). */
  children(table: Buffer, prefix: string): Promise<NodeSummary[]>;
  /** The node's ids, ascending, at most `limit` (callers ask only for small nodes). */
  ids(table: Buffer, prefix: string, limit: number): Promise<Buffer[]>;
}

/** Cost hints for choosing a query plan: the table's size, and the ids of all tables in the range. */
export interface RangeHint {
  tableCount: number;
  rangeEstimate: number;
}

export interface IdSource {
  /** Ids of `table` with this prefix, ascending, at most `limit`. */
  idsInRange(table: Buffer, prefix: string, limit: number, hint: RangeHint): Promise<Buffer[]>;
}

const EMPTY: NodeSummary = { count: 0, fingerprint: EMPTY_FINGERPRINT };

export class TreeView implements SyncView {
  private readonly forestOf: () => PrefixForest;

  /** `forest` may be a getter, for an owner that replaces its forest (a rebuild). */
  constructor(
    forest: PrefixForest | (() => PrefixForest),
    private readonly source: IdSource,
  ) {
    this.forestOf = typeof forest === 'function' ? forest : () => forest;
  }

  private get forest(): PrefixForest {
    return this.forestOf();
  }

  tableList(): Buffer[] {
    return this.forest
      .entries()
      .filter((t) => t.tree.total > 0)
      .map((t) => t.table);
  }

  async node(table: Buffer, prefix: string): Promise<NodeSummary> {
    const tree = this.forest.tree(table);
    if (!tree || tree.total === 0) return EMPTY;
    if (prefix.length <= TREE_DEPTH) return this.treeNode(table, prefix);
    const ids = await this.scan(table, prefix, Number.MAX_SAFE_INTEGER);
    return ids.length === 0 ? EMPTY : { count: ids.length, fingerprint: fingerprintOfIds(ids) };
  }

  async children(table: Buffer, prefix: string): Promise<NodeSummary[]> {
    const tree = this.forest.tree(table);
    if (!tree || tree.total === 0) return new Array<NodeSummary>(16).fill(EMPTY);
    if (prefix.length < TREE_DEPTH) {
      return Array.from({ length: 16 }, (_, i) => this.treeNode(table, prefix + i.toString(16)));
    }
    // Below the tree: one range scan of the node, split by the next nibble.
    const ids = await this.scan(table, prefix, Number.MAX_SAFE_INTEGER);
    const groups: Buffer[][] = Array.from({ length: 16 }, () => []);
    for (const id of ids) groups[nibbleAt(id, prefix.length)]!.push(id);
    return groups.map((g) => (g.length === 0 ? EMPTY : { count: g.length, fingerprint: fingerprintOfIds(g) }));
  }

  async ids(table: Buffer, prefix: string, limit: number): Promise<Buffer[]> {
    const tree = this.forest.tree(table);
    if (!tree || tree.total === 0) return [];
    if (prefix.length <= TREE_DEPTH && tree.countAt(nodeKey(prefix.length, prefixIndex(prefix))) === 0) return [];
    return this.scan(table, prefix, limit);
  }

  private treeNode(table: Buffer, prefix: string): NodeSummary {
    const tree = this.forest.tree(table)!;
    const key = nodeKey(prefix.length, prefixIndex(prefix));
    const s = tree.sumAt(key);
    if (!s) return EMPTY;
    const count = tree.countAt(key);
    return { count, fingerprint: fingerprintOfWords(s.sums, s.off, count) };
  }

  private scan(table: Buffer, prefix: string, limit: number): Promise<Buffer[]> {
    const tree = this.forest.tree(table);
    const hint: RangeHint = {
      tableCount: tree?.total ?? 0,
      rangeEstimate: this.forest.total() / 16 ** Math.min(prefix.length, 13),
    };
    return this.source.idsInRange(table, prefix, limit, hint);
  }
}
