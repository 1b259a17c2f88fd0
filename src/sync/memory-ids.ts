/**
 * An IdSource over ids held in memory, bucketed by their first 16 bits and sorted lazily:
 * the model the SQLite-backed index is tested against, and the peer of property tests and
 * benchmarks (1 M ids without a database).
 */
import { idHasPrefix, prefixRange } from './prefix.js';
import { PrefixForest } from './prefix-tree.js';
import { TreeView, type IdSource } from './view.js';

export class MemoryIds implements IdSource {
  private readonly tables = new Map<string, Map<number, { ids: Buffer[]; sorted: boolean }>>();
  readonly forest = new PrefixForest();

  /** Adds an id (the caller keeps ids unique per table). */
  add(table: Buffer, id: Buffer): void {
    this.addMany(table, [id]);
  }

  addMany(table: Buffer, ids: readonly Buffer[]): void {
    const k = table.toString('latin1');
    let buckets = this.tables.get(k);
    if (!buckets) this.tables.set(k, (buckets = new Map()));
    for (const id of ids) {
      const b = (id[0]! << 8) | id[1]!;
      let bucket = buckets.get(b);
      if (!bucket) buckets.set(b, (bucket = { ids: [], sorted: true }));
      bucket.ids.push(id);
      bucket.sorted = false;
      this.forest.add(table, id);
    }
  }

  view(): TreeView {
    return new TreeView(this.forest, this);
  }

  async idsInRange(table: Buffer, prefix: string, limit: number): Promise<Buffer[]> {
    const buckets = this.tables.get(table.toString('latin1'));
    if (!buckets) return [];
    const { lo, hi } = prefixRange(prefix);
    const first = (lo[0]! << 8) | lo[1]!;
    const end = hi ? (hi[0]! << 8) | hi[1]! : 65_536;
    const last = Math.max(first, end === first ? first : end - 1); // a deep prefix lies in one bucket
    const keys = last - first + 1 > buckets.size ? [...buckets.keys()].filter((b) => b >= first && b <= last).sort((a, b) => a - b) : null;
    const out: Buffer[] = [];
    const visit = (b: number) => {
      const bucket = buckets.get(b);
      if (!bucket) return;
      if (!bucket.sorted) {
        bucket.ids.sort(Buffer.compare);
        bucket.sorted = true;
      }
      for (const id of bucket.ids) {
        if (out.length >= limit) return;
        if (idHasPrefix(id, prefix)) out.push(id);
      }
    };
    if (keys) for (const b of keys) visit(b);
    else for (let b = first; b <= last && out.length < limit; b++) visit(b);
    return out;
  }
}
