/**
 * `npm run bench -- index-cost`: what keeping the sync fingerprints current costs ingest. The
 * same store insert workload as `bench store` (calls of 500, 4 in flight, fsync per commit)
 * into an empty store and into one of 1 M entries, with and without a SyncIndex following the
 * store; runs alternate (without, with, without, with, ...) so drift on a shared machine hits
 * both sides alike. The bound: under 10% of ingest throughput.
 */
import { mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openSqliteStore as openStore } from '../../src/store/sqlite/open.js';
import { SyncIndex } from '../../src/sync/sync-index.js';
import { copyPrefilled, SyntheticEntries } from './prefill.js';
import { measureInsert } from './store.js';

export async function benchIndexCost(opts: { entries?: number; stored?: number[]; rounds?: number } = {}): Promise<object[]> {
  const entries = opts.entries ?? 200_000;
  const rounds = opts.rounds ?? 3;
  const rows: object[] = [];
  const root = path.join(tmpdir(), `p2pdb-bench-index-cost-${process.pid}`);
  for (const stored of opts.stored ?? [0, 1_000_000]) {
    const rates: Record<'without' | 'with', number[]> = { without: [], with: [] };
    for (let r = 0; r < rounds; r++) {
      for (const variant of ['without', 'with'] as const) {
        const dir = path.join(root, `${stored}-${r}-${variant}`);
        await mkdir(dir, { recursive: true });
        const filename = path.join(dir, 'p2pdb.sqlite');
        if (stored > 0) await copyPrefilled(stored, filename);
        const store = await openStore({ filename });
        // Opening builds the index from the store (not measured); then it follows every commit.
        const index = variant === 'with' ? await SyncIndex.open({ store, dataDir: dir }) : undefined;
        try {
          const source = new SyntheticEntries({ seed: 1000 + r }, `index-cost-${variant}`);
          const m = await measureInsert(store, source, entries, 500, 4);
          rates[variant].push(m.entries_per_s);
          process.stderr.write(`index-cost: stored=${stored} ${variant} ${Math.round(m.entries_per_s)}/s\n`);
        } finally {
          await index?.close();
          await store.close();
          await rm(dir, { recursive: true, force: true });
        }
      }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const without = median(rates.without);
    const withIndex = median(rates.with);
    rows.push({
      bench: 'index-cost',
      stored,
      entries,
      rounds,
      without_index_per_s: Math.round(without),
      with_index_per_s: Math.round(withIndex),
      cost_percent: Math.round(((without - withIndex) / without) * 1000) / 10,
      runs_without: rates.without.map(Math.round),
      runs_with: rates.with.map(Math.round),
    });
  }
  await rm(root, { recursive: true, force: true });
  return rows;
}
