/**
 * Proof of work in a browser: the search runs in a Web Worker (the page never blocks), with
 * progress and cancel. The worker uses the WebAssembly SHA-256 kernel and falls back to plain JS
 * where WebAssembly is disabled (Tor Browser's Safer level) or fails to compile.
 *
 * `mintWithProgress` is the worker's side (pure, kernel passed in); `mintInWorker` the page's.
 */
import { fail, isP2pdbError, P2pdbError, type ErrorCode } from '../errors.js';
import { createJsKernel, createWasmKernel, wasmAvailable, type KernelKind, type PowKernel } from '../pow/sha256-kernel.js';
import { MAX_TOKEN_BITS, writeNonce } from '../pow/token-block.js';

export const POW_TOKENS = 16;
const POW_CLUSTER_BONUS = 4;
/** Nonces per kernel call: small enough to report progress several times a second even in JS. */
const SLICE = 1 << 15;

export interface MintProgress {
  /** 0..1, by expected work. */
  fraction: number;
  tokensDone: number;
  hashes: number;
  kernel: KernelKind;
}

/** The kernel to use: WebAssembly unless asked for JS or unavailable or refused by the engine. */
export function pickKernel(prefer: 'auto' | KernelKind = 'auto'): PowKernel {
  if (prefer !== 'js' && wasmAvailable()) {
    try {
      return createWasmKernel();
    } catch {
      // CSP without 'wasm-unsafe-eval', or an engine that exposes but refuses WebAssembly.
    }
  }
  return createJsKernel();
}

/** Finds the 16 nonces; calls onProgress every few slices. Blocking: run it in a worker. */
export function mintWithProgress(
  kernel: PowKernel,
  id: Uint8Array,
  clusterBits: number,
  onProgress?: (p: MintProgress) => void,
): Uint8Array {
  if (id.length !== 32) fail('malformed', 'a proof-of-work id is 32 bytes');
  if (!Number.isInteger(clusterBits) || clusterBits < 0 || clusterBits > MAX_TOKEN_BITS + POW_CLUSTER_BONUS) {
    fail('bad_request', 'cluster bits out of range');
  }
  const bits = Math.max(0, clusterBits - POW_CLUSTER_BONUS);
  const perToken = 2 ** bits;
  const proof = new Uint8Array(POW_TOKENS * 8);
  let hashes = 0;
  let lastReport = 0;
  for (let token = 0; token < POW_TOKENS; token++) {
    let found: number | undefined;
    for (let start = 0; found === undefined; start += SLICE) {
      found = kernel.search(id, token, bits, start, SLICE);
      const tried = found === undefined ? SLICE : found + 1;
      hashes += tried;
      const now = Date.now();
      if (onProgress && now - lastReport >= 100) {
        lastReport = now;
        const inToken = Math.min(0.95, (start + tried) / perToken);
        onProgress({ fraction: (token + inToken) / POW_TOKENS, tokensDone: token, hashes, kernel: kernel.kind });
      }
    }
    writeNonce(proof, token * 8, found);
  }
  onProgress?.({ fraction: 1, tokensDone: POW_TOKENS, hashes, kernel: kernel.kind });
  return proof;
}

// --- the worker's side ---

/** The part of a worker's global scope used here. */
export interface WorkerScopeLike {
  postMessage(message: unknown): void;
}

/**
 * Answers one MintRequest inside a worker: progress messages, then `minted` or `error`. A worker
 * script for mintInWorker can be just:
 *   self.onmessage = (ev) => answerMintRequest(self, ev.data);
 */
export function answerMintRequest(scope: WorkerScopeLike, req: MintRequest): void {
  const began = performance.now();
  try {
    const kernel = pickKernel(req.kernel);
    let hashes = 0;
    const proof = mintWithProgress(kernel, req.id, req.bits, (progress) => {
      hashes = progress.hashes;
      scope.postMessage({ type: 'progress', progress } satisfies MintReply);
    });
    scope.postMessage({ type: 'minted', proof, kernel: kernel.kind, ms: performance.now() - began, hashes } satisfies MintReply);
  } catch (e) {
    scope.postMessage({ type: 'error', code: isP2pdbError(e) ? e.code : 'internal', message: (e as Error).message } satisfies MintReply);
  }
}

// --- the page's side ---

/** The part of a Worker used here (Node's and the DOM's typings both fit). */
export interface WorkerLike {
  postMessage(message: unknown): void;
  terminate(): void;
  onmessage: ((ev: { data: unknown }) => unknown) | null;
  onerror: ((ev: unknown) => unknown) | null;
}

export type MintRequest = { type: 'mint'; id: Uint8Array; bits: number; kernel: 'auto' | KernelKind };
export type MintReply =
  | { type: 'progress'; progress: MintProgress }
  | { type: 'minted'; proof: Uint8Array; kernel: KernelKind; ms: number; hashes: number }
  | { type: 'error'; code: ErrorCode; message: string };

export interface MintJob {
  promise: Promise<{ proof: Uint8Array; kernel: KernelKind; ms: number; hashes: number }>;
  /** Stops the worker; the promise rejects with P2pdbError('mint_cancelled'). */
  cancel(): void;
}

/** Mints in a fresh worker (so cancel is simply terminate). */
export function mintInWorker(
  makeWorker: () => WorkerLike,
  id: Uint8Array,
  bits: number,
  opts: { kernel?: 'auto' | KernelKind; onProgress?: (p: MintProgress) => void } = {},
): MintJob {
  const worker = makeWorker();
  let settle: ((err?: Error) => void) | undefined;
  const promise = new Promise<{ proof: Uint8Array; kernel: KernelKind; ms: number; hashes: number }>((resolve, reject) => {
    settle = (err) => {
      worker.terminate();
      settle = undefined;
      if (err) reject(err);
    };
    worker.onmessage = (ev) => {
      const msg = ev.data as MintReply;
      if (msg.type === 'progress') opts.onProgress?.(msg.progress);
      else if (msg.type === 'minted') {
        settle?.();
        resolve({ proof: msg.proof, kernel: msg.kernel, ms: msg.ms, hashes: msg.hashes });
      } else if (msg.type === 'error') settle?.(new P2pdbError(msg.code, msg.message));
    };
    worker.onerror = () => settle?.(new P2pdbError('internal', 'the proof-of-work worker failed'));
  });
  const request: MintRequest = { type: 'mint', id, bits, kernel: opts.kernel ?? 'auto' };
  worker.postMessage(request);
  return { promise, cancel: () => settle?.(new P2pdbError('mint_cancelled', 'minting was cancelled')) };
}
