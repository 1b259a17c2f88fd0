/**
 * `npm run bench -- [NAME ...] [--quick] [--n N]... [--d D]... [--tables T] [--no-seed] [--backend sqlite|postgres]`: runs the
 * named benchmarks (all when none is named) and prints one JSON object per measurement on stdout.
 * Progress goes to stderr. --quick shrinks sizes for a smoke run (figures from it are not the
 * recorded ones); --n and --d (repeatable) choose store sizes (sync, bootstrap, index-cost, store,
 * get, ingest) and differences (sync); --tables and --no-seed apply to sync; --backend (store,
 * ingest, get) picks the database: SQLite files, or a local PostgreSQL server (scripts/bench/database.ts).
 */
import { parseArgs } from 'node:util';
import { cpus } from 'node:os';

interface Sizes {
  n?: number[];
  d?: number[];
  /** sync: tables in the prefilled stores (default 1). */
  tables?: number;
  /** sync: skip the seed's approach (it reads every row; minutes at 10 M). */
  noSeed?: boolean;
  backend?: 'sqlite' | 'postgres';
}
type Bench = (quick: boolean, sizes: Sizes) => Promise<object[]>;

const BENCHES: Record<string, Bench> = {
  ceiling: async (quick) => (await import('./ceiling.js')).benchCeiling({ seconds: quick ? 1 : 3 }),
  mint: async (quick) => (await import('./mint.js')).benchMint({ runs: quick ? 3 : 15, bits: 21 }),
  ingest: async (quick, sizes) =>
    (await import('./ingest.js')).benchIngest({ ...(quick ? { entries: 5000, stored: [0, 100_000] } : sizes.n ? { stored: sizes.n } : {}), backend: sizes.backend ?? 'sqlite' }),
  'put-single': async (quick) => (await import('./ingest.js')).benchSinglePut(quick ? { entries: 2000 } : {}),
  get: async (quick, sizes) =>
    (await import('./get.js')).benchGet({ ...(quick ? { stored: 100_000, requests: 200 } : sizes.n ? { stored: sizes.n[0]! } : {}), backend: sizes.backend ?? 'sqlite' }),
  store: async (quick, sizes) =>
    (await import('./store.js')).benchStore({ ...(quick ? { quick: true } : sizes.n ? { stored: sizes.n } : {}), backend: sizes.backend ?? 'sqlite' }),
  sync: async (quick, sizes) =>
    (await import('./sync.js')).benchSync({
      ns: sizes.n ?? (quick ? [20_000] : [100_000, 1_000_000]),
      ds: sizes.d ?? (quick ? [0, 1, 100] : [0, 1, 100, 10_000]),
      ...(sizes.tables ? { tables: sizes.tables } : {}),
      ...(sizes.noSeed ? { seed: false } : {}),
    }),
  bootstrap: async (quick, sizes) => {
    const { benchBootstrap } = await import('./bootstrap.js');
    const rows: object[] = [];
    for (const n of sizes.n ?? [quick ? 2000 : 1_000_000]) rows.push(...(await benchBootstrap({ n })));
    return rows;
  },
  'index-cost': async (quick, sizes) =>
    (await import('./index-cost.js')).benchIndexCost(quick ? { entries: 20_000, stored: [0], rounds: 1 } : sizes.n ? { stored: sizes.n } : {}),
  'sync-tor': async (quick, sizes) => {
    const { benchSyncTor } = await import('./sync-tor.js');
    const rows: object[] = [];
    for (const n of sizes.n ?? [quick ? 2000 : 20_000]) rows.push(...(await benchSyncTor({ n })));
    return rows;
  },
};

const USAGE = `usage: npm run bench -- [NAME ...] [--quick] [--n N]... [--d D]... [--tables T] [--no-seed] [--backend sqlite|postgres]
names: ${Object.keys(BENCHES).join(', ')} (all when none is named: long)
One JSON object per measurement on stdout; figures and the commands behind them: docs/BENCHMARKS.md.`;

let parsed: ReturnType<typeof parseOptions>;
function parseOptions() {
  return parseArgs({
    allowPositionals: true,
    options: {
      quick: { type: 'boolean', default: false },
      n: { type: 'string', multiple: true },
      d: { type: 'string', multiple: true },
      tables: { type: 'string' },
      'no-seed': { type: 'boolean', default: false },
      backend: { type: 'string', default: 'sqlite' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
}
try {
  parsed = parseOptions();
} catch (e) {
  console.error(`${(e as Error).message}\n${USAGE}`);
  process.exit(2);
}
const { values, positionals } = parsed;
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const numbers = (list: string[] | undefined, name: string): number[] | undefined =>
  list?.map((v) => {
    const x = Number(v.replace(/_/g, ''));
    if (!Number.isSafeInteger(x) || x < 0) {
      console.error(`--${name} takes a non-negative integer, not ${v}`);
      process.exit(2);
    }
    return x;
  });
const sizes: Sizes = {};
const ns = numbers(values.n, 'n');
const ds = numbers(values.d, 'd');
if (ns) sizes.n = ns;
if (ds) sizes.d = ds;
const tables = numbers(values.tables ? [values.tables] : undefined, 'tables');
if (tables) sizes.tables = tables[0]!;
if (values['no-seed']) sizes.noSeed = true;
if (values.backend !== 'sqlite' && values.backend !== 'postgres') {
  console.error(`--backend is sqlite or postgres, not ${values.backend}`);
  process.exit(2);
}
sizes.backend = values.backend;
const names = positionals.length > 0 ? positionals : Object.keys(BENCHES);
for (const name of names) {
  if (!BENCHES[name]) {
    console.error(`unknown benchmark ${name}; choose from ${Object.keys(BENCHES).join(', ')}`);
    process.exit(2);
  }
}
const machine = { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version };
for (const name of names) {
  console.error(`bench: ${name}${values.quick ? ' (quick)' : ''}`);
  const t0 = performance.now();
  for (const row of await BENCHES[name]!(values.quick ?? false, sizes)) {
    console.log(JSON.stringify({ ...row, at: new Date().toISOString(), machine }));
  }
  console.error(`bench: ${name} done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}
await (await import('./database.js')).stopBenchPostgres();
