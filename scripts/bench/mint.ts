/**
 * Proof-of-work minting: single-core kernel throughput (WASM and JS) and the wall time of a
 * cluster mint in-process, on a one-worker pool and on a pool on every core.
 * Run directly: `node dist/scripts/bench/mint.js [--runs N] [--bits B]`, one JSON line per row.
 */
import { randomBytes } from 'node:crypto';
import { availableParallelism, loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { POW_NONCE_BYTES, POW_TOKENS, proofValue } from '../../src/pow/cluster.js';
import { mintProof } from '../../src/pow/mint.js';
import { MintPool } from '../../src/pow/mint-pool.js';
import { KernelKind, createKernel, warmUpKernel } from '../../src/pow/sha256-kernel.js';
import { MAX_TOKEN_BITS, readNonce } from '../../src/pow/token-block.js';

function percentile(sorted: number[], p: number): number {
  return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)]!;
}

const round = (x: number, digits = 1) => Number(x.toFixed(digits));

/** Hashes per second of one kernel on this thread: the median of 7 searches that find nothing. */
function kernelRate(kind: KernelKind): object {
  const kernel = createKernel(kind);
  warmUpKernel(kernel);
  // About 0.3 s per sample on this class of machine.
  const count = kind === 'wasm' ? 2 ** 21 : 2 ** 19;
  const id = randomBytes(32);
  const rates: number[] = [];
  for (let s = 0; s < 7; s++) {
    const t0 = performance.now();
    kernel.search(id, 0, MAX_TOKEN_BITS, s * count, count);
    rates.push(count / ((performance.now() - t0) / 1000));
  }
  rates.sort((a, b) => a - b);
  return {
    bench: 'mint-kernel',
    kernel: kind,
    threads: 1,
    samples: rates.length,
    hashes_per_s: Math.round(percentile(rates, 0.5)),
    load_1m: round(loadavg()[0]!, 2),
  };
}

interface Run {
  ms: number;
  hashes: number;
}

function summary(mode: string, threads: number, bits: number, runs: Run[], extra: object = {}): object {
  const ms = runs.map((r) => r.ms).sort((a, b) => a - b);
  const totalMs = runs.reduce((s, r) => s + r.ms, 0);
  const totalHashes = runs.reduce((s, r) => s + r.hashes, 0);
  return {
    bench: 'mint',
    mode,
    threads,
    bits,
    runs: runs.length,
    median_ms: round(percentile(ms, 0.5)),
    p90_ms: round(percentile(ms, 0.9)),
    min_ms: round(ms[0]!),
    max_ms: round(ms.at(-1)!),
    hashes_per_s: Math.round(totalHashes / (totalMs / 1000)),
    ...extra,
    // Other processes on a 2-core machine show up as slow runs: the load says when.
    load_1m: round(loadavg()[0]!, 2),
  };
}

async function poolRuns(threads: number, bits: number, runs: number): Promise<object> {
  const pool = new MintPool({ threads });
  try {
    const t0 = performance.now();
    await pool.ready();
    const readyMs = performance.now() - t0;
    const mintOnce = async (): Promise<Run> => {
      const id = randomBytes(32);
      let hashes = 0;
      const start = performance.now();
      const proof = await pool.mint(id, bits, { onProgress: (p) => (hashes = p.hashes) });
      const ms = performance.now() - start;
      if (proofValue(id, proof) < bits) throw new Error(`pool minted a proof below ${bits} bits`);
      return { ms, hashes };
    };
    await mintOnce(); // the first job also pays for one-off costs in the main thread
    const out: Run[] = [];
    for (let r = 0; r < runs; r++) out.push(await mintOnce());
    return summary('pool', threads, bits, out, { kernel: pool.kernel, ready_ms: round(readyMs) });
  } finally {
    await pool.close();
  }
}

function inProcessRuns(bits: number, runs: number): object {
  mintProof(randomBytes(32), Math.min(bits, 12)); // compile and tier up the kernel
  const out: Run[] = [];
  for (let r = 0; r < runs; r++) {
    const id = randomBytes(32);
    const start = performance.now();
    const proof = mintProof(id, bits);
    const ms = performance.now() - start;
    if (proofValue(id, proof) < bits) throw new Error(`mintProof fell short of ${bits} bits`);
    // Each token's search starts at nonce 0 and stops at the first hit: n + 1 hashes.
    let hashes = 0;
    for (let t = 0; t < POW_TOKENS; t++) hashes += readNonce(proof, t * POW_NONCE_BYTES) + 1;
    out.push({ ms, hashes });
  }
  return summary('in-process', 1, bits, out, { kernel: 'wasm' });
}

export async function benchMint(opts: { runs?: number; bits?: number } = {}): Promise<object[]> {
  const runs = opts.runs ?? 15;
  const bits = opts.bits ?? 21;
  const all = availableParallelism();
  const rows: object[] = [kernelRate('wasm'), kernelRate('js')];
  rows.push(inProcessRuns(bits, runs));
  rows.push(await poolRuns(1, bits, runs));
  if (all > 1) rows.push(await poolRuns(all, bits, runs));
  return rows;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({ options: { runs: { type: 'string' }, bits: { type: 'string' } } });
  const rows = await benchMint({
    ...(values.runs ? { runs: Number(values.runs) } : {}),
    ...(values.bits ? { bits: Number(values.bits) } : {}),
  });
  for (const row of rows) console.log(JSON.stringify(row));
}
