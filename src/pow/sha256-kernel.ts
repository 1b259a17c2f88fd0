/**
 * Proof-of-work search kernels: find the first nonce at which one token of a cluster has enough
 * leading zero bits. Two implementations behind one interface, WebAssembly (fast) and plain JS
 * (where WebAssembly is disabled). Only web-standard APIs are used (typed arrays, TextEncoder,
 * WebAssembly, performance.now), so this runs in a browser Web Worker as well as in Node.
 *
 * Nonces are safe integers, encoded as 8 big-endian bytes (see token-block.ts).
 */
import { fail } from '../errors.js';
import { searchJs } from './sha256-js.js';
import { RawSearch, instantiateSearch, searchModuleBytes, wasmApi } from './sha256-wasm.js';
import { MAX_TOKEN_BITS, templateWords, zeroBitMasks } from './token-block.js';

export type KernelKind = 'wasm' | 'js';

export interface PowKernel {
  readonly kind: KernelKind;
  /**
   * The first nonce in [start, start + count) at which token `index` of `id` has at least
   * `bits` leading zero bits, or undefined if there is none in that range.
   */
  search(id: Uint8Array, index: number, bits: number, start: number, count: number): number | undefined;
}

/** Nonces per call into the raw search: it counts in int32. */
const SLICE = 2 ** 30;
const NONCE_LIMIT = 2 ** 53;

function kernel(kind: KernelKind, raw: RawSearch): PowKernel {
  return {
    kind,
    search(id, index, bits, start, count) {
      const template = templateWords(id, index);
      const [m0, m1] = zeroBitMasks(bits);
      if (!Number.isSafeInteger(start) || !Number.isSafeInteger(count) || start < 0 || count < 0 || start + count > NONCE_LIMIT) {
        fail('bad_request', 'nonce range must lie within 0..2^53');
      }
      for (let from = start, end = start + count; from < end; ) {
        const n = Math.min(SLICE, end - from);
        const found = raw(template, Math.floor(from / 0x1_0000_0000), from >>> 0, n, m0, m1);
        if (found >= 0) return from + found;
        from += n;
      }
      return undefined;
    },
  };
}

export function wasmAvailable(): boolean {
  return wasmApi() !== undefined;
}

let compiled: object | undefined;

/** The WebAssembly kernel, compiled synchronously (fine in Node and in workers). */
export function createWasmKernel(): PowKernel {
  const api = wasmApi();
  if (!api) fail('internal', 'WebAssembly is not available here');
  compiled ??= new api.Module(searchModuleBytes());
  return kernel('wasm', instantiateSearch(compiled));
}

/** The WebAssembly kernel, compiled off-thread (a browser's main thread refuses large sync compiles). */
export async function compileWasmKernel(): Promise<PowKernel> {
  const api = wasmApi();
  if (!api) fail('internal', 'WebAssembly is not available here');
  compiled ??= await api.compile(searchModuleBytes());
  return kernel('wasm', instantiateSearch(compiled));
}

export function createJsKernel(): PowKernel {
  return kernel('js', searchJs);
}

/** The fastest kernel available here, or the one asked for. */
export function createKernel(kind?: KernelKind): PowKernel {
  if (kind === 'js') return createJsKernel();
  if (kind === 'wasm' || wasmAvailable()) return createWasmKernel();
  return createJsKernel();
}

/**
 * Runs small searches until the engine has optimised the kernel: V8 first runs WebAssembly
 * through its baseline compiler (about 20x slower here) and swaps in optimised code in the
 * background, and a running call never switches. Workers of one process may also share
 * already optimised code, so there is not always a jump to see. Done when the last two calls
 * run near the best rate seen, after a jump of 4x or else after 16 calls; at the latest after
 * `budgetMs`. Returns the milliseconds spent.
 */
export function warmUpKernel(kernel: PowKernel, budgetMs = 1000): number {
  const id = new Uint8Array(32);
  const count = 4096;
  const began = performance.now();
  let slowest = Infinity;
  let best = 0;
  let previous = 0;
  for (let call = 0; ; call++) {
    const t0 = performance.now();
    kernel.search(id, 0, MAX_TOKEN_BITS, call * count, count);
    const t1 = performance.now();
    const rate = count / Math.max(t1 - t0, 0.001);
    slowest = Math.min(slowest, rate);
    best = Math.max(best, rate);
    const steady = rate >= 0.7 * best && previous >= 0.7 * best;
    if (steady && (best >= 4 * slowest || call >= 16)) return t1 - began;
    if (t1 - began >= budgetMs) return t1 - began;
    previous = rate;
  }
}
