/**
 * In-memory aggregates (count, 256-bit sum) of one table's ids for every prefix node of depth
 * 0..4 nibbles: 1 + 16 + 256 + 4,096 + 65,536 = 69,905 nodes. Every level is maintained on
 * insert (5 word-adds per id, measured in scripts/bench/sync-core.ts) rather than derived from the
 * leaves: answering then reads any node in O(1) while entries keep arriving.
 *
 * Memory bound: sparse while the table is small (a Map from node key to a slot; at most
 * 5 slots per id, each 36 bytes + the Map entry), dense (2.5 MiB: 69,905 × 36 bytes) once more
 * than DENSE_AT slots are used. So a table costs O(min(entries, 65,536)) memory, at most ~2.5 MiB.
 */
import { addWords, idWords, SUM_WORDS } from './sum256.js';

export const TREE_DEPTH = 4;
/** First node key of each depth: key = OFFSET[depth] + index of the node at that depth. */
const OFFSET = [0, 1, 17, 273, 4369] as const;
export const NODE_COUNT = 69_905;
export const LEAF_COUNT = 65_536;
/** Slots used before switching to dense arrays (sparse costs ~2× a dense slot with the Map). */
const DENSE_AT = 8192;

export function nodeKey(depth: number, index: number): number {
  return OFFSET[depth]! + index;
}

/** Index of a prefix string of at most 4 nibbles at its depth. */
export function prefixIndex(prefix: string): number {
  return prefix.length === 0 ? 0 : parseInt(prefix, 16);
}

const words = new Uint32Array(SUM_WORDS);

export class TableTree {
  /** Node key → slot; null once dense (slot = key). */
  private slots: Map<number, number> | null = new Map();
  private sums: Uint32Array;
  private counts: Uint32Array;

  constructor() {
    this.sums = new Uint32Array(16 * SUM_WORDS);
    this.counts = new Uint32Array(16);
  }

  get total(): number {
    return this.countAt(0);
  }

  /** Adds one id to its five nodes (depth 0..4). */
  add(id: Uint8Array): void {
    idWords(id, words);
    const b0 = id[0]!;
    const leaf = (b0 << 8) | id[1]!;
    if (!this.slots) {
      // Dense (large tables): node key = slot, no lookups; the hot path of ingest.
      const sums = this.sums;
      const counts = this.counts;
      addWords(sums, 0, words);
      addWords(sums, (1 + (b0 >> 4)) * SUM_WORDS, words);
      addWords(sums, (17 + b0) * SUM_WORDS, words);
      addWords(sums, (273 + (leaf >> 4)) * SUM_WORDS, words);
      addWords(sums, (4369 + leaf) * SUM_WORDS, words);
      counts[0]!++;
      counts[1 + (b0 >> 4)]!++;
      counts[17 + b0]!++;
      counts[273 + (leaf >> 4)]!++;
      counts[4369 + leaf]!++;
      return;
    }
    this.bump(0, words);
    this.bump(1 + (b0 >> 4), words);
    this.bump(17 + b0, words);
    this.bump(273 + (leaf >> 4), words);
    this.bump(4369 + leaf, words);
  }

  /** Adds a leaf's whole aggregate (snapshot load). */
  addLeaf(leaf: number, count: number, sum: Uint32Array, sumOff: number): void {
    const w = sum.subarray(sumOff, sumOff + SUM_WORDS);
    for (let d = 0; d <= TREE_DEPTH; d++) this.bumpBy(nodeKey(d, leaf >> (4 * (TREE_DEPTH - d))), w, count);
  }

  countAt(key: number): number {
    const slot = this.slotOf(key);
    return slot < 0 ? 0 : this.counts[slot]!;
  }

  /** The node's sum words (a view: copy before keeping), or null when the node is empty. */
  sumAt(key: number): { sums: Uint32Array; off: number } | null {
    const slot = this.slotOf(key);
    if (slot < 0 || this.counts[slot] === 0) return null;
    return { sums: this.sums, off: slot * SUM_WORDS };
  }

  /** Non-empty leaves in index order (snapshot write). */
  *leaves(): Generator<{ leaf: number; count: number; sums: Uint32Array; off: number }> {
    for (let leaf = 0; leaf < LEAF_COUNT; leaf++) {
      const slot = this.slotOf(4369 + leaf);
      if (slot >= 0 && this.counts[slot]! > 0) yield { leaf, count: this.counts[slot]!, sums: this.sums, off: slot * SUM_WORDS };
    }
  }

  /** Approximate bytes held (bench). */
  bytes(): number {
    return this.sums.byteLength + this.counts.byteLength + (this.slots ? this.slots.size * 40 : 0);
  }

  private slotOf(key: number): number {
    if (!this.slots) return key;
    return this.slots.get(key) ?? -1;
  }

  private bump(key: number, w: Uint32Array): void {
    this.bumpBy(key, w, 1);
  }

  private bumpBy(key: number, w: Uint32Array, n: number): void {
    let slot: number;
    if (this.slots) {
      const s = this.slots.get(key);
      if (s === undefined) {
        slot = this.slots.size;
        if (slot >= DENSE_AT) {
          this.densify();
          slot = key;
        } else {
          this.slots.set(key, slot);
          if (slot >= this.counts.length) this.grow(this.counts.length * 2);
        }
      } else slot = s;
    } else slot = key;
    addWords(this.sums, slot * SUM_WORDS, w);
    this.counts[slot] = this.counts[slot]! + n;
  }

  private grow(cap: number): void {
    const sums = new Uint32Array(cap * SUM_WORDS);
    sums.set(this.sums);
    const counts = new Uint32Array(cap);
    counts.set(this.counts);
    this.sums = sums;
    this.counts = counts;
  }

  private densify(): void {
    const sums = new Uint32Array(NODE_COUNT * SUM_WORDS);
    const counts = new Uint32Array(NODE_COUNT);
    for (const [key, slot] of this.slots!) {
      sums.set(this.sums.subarray(slot * SUM_WORDS, (slot + 1) * SUM_WORDS), key * SUM_WORDS);
      counts[key] = this.counts[slot]!;
    }
    this.sums = sums;
    this.counts = counts;
    this.slots = null;
  }
}

/** One TableTree per table fingerprint. */
export class PrefixForest {
  private readonly trees = new Map<string, { table: Buffer; tree: TableTree }>();
  /** The last table added to: entries mostly arrive in runs of one table, and a 32-byte compare beats a Map key. */
  private last: { table: Buffer; tree: TableTree } | null = null;
  private ids = 0;

  add(table: Buffer, id: Uint8Array): void {
    this.ids++;
    if (this.last && this.last.table.equals(table)) {
      this.last.tree.add(id);
      return;
    }
    const tree = this.tree(table, true)!;
    this.last = { table: Buffer.from(table), tree };
    tree.add(id);
  }

  /** Adds a leaf's aggregate (snapshot load). */
  addLeaf(table: Buffer, leaf: number, count: number, sum: Uint32Array, sumOff: number): void {
    this.ids += count;
    this.tree(table, true)!.addLeaf(leaf, count, sum, sumOff);
  }

  tree(table: Buffer, create = false): TableTree | undefined {
    const k = table.toString('latin1');
    let t = this.trees.get(k);
    if (!t && create) {
      t = { table: Buffer.from(table), tree: new TableTree() };
      this.trees.set(k, t);
    }
    return t?.tree;
  }

  entries(): { table: Buffer; tree: TableTree }[] {
    return [...this.trees.values()];
  }

  /** Total ids over all tables (kept as a counter: every deep read asks for it). */
  total(): number {
    return this.ids;
  }
}
