/**
 * `npm run bench -- [NAME ...] [--quick]`: runs the named benchmarks (all when none is named)
 * and prints one JSON object per measurement on stdout. Progress goes to stderr.
 * --quick shrinks sizes for a smoke run (figures from it are not the recorded ones).
 */
import { parseArgs } from 'node:util';
import { cpus } from 'node:os';

type Bench = (quick: boolean) => Promise<object[]>;

const BENCHES: Record<string, Bench> = {
  ceiling: async (quick) => (await import('./ceiling.js')).benchCeiling({ seconds: quick ? 1 : 3 }),
  mint: async (quick) => (await import('./mint.js')).benchMint({ runs: quick ? 3 : 15, bits: 21 }),
  ingest: async (quick) =>
    (await import('./ingest.js')).benchIngest(quick ? { entries: 5000, stored: [0, 100_000] } : {}),
  'put-single': async (quick) => (await import('./ingest.js')).benchSinglePut(quick ? { entries: 2000 } : {}),
  get: async (quick) => (await import('./get.js')).benchGet(quick ? { stored: 100_000, requests: 200 } : {}),
  store: async (quick) => (await import('./store.js')).benchStore(quick ? { quick: true } : {}),
};

const { values, positionals } = parseArgs({ allowPositionals: true, options: { quick: { type: 'boolean', default: false } } });
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
  for (const row of await BENCHES[name]!(values.quick ?? false)) {
    console.log(JSON.stringify({ ...row, at: new Date().toISOString(), machine }));
  }
  console.error(`bench: ${name} done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}
