/** Messages between MintPool and its workers (structured-clone friendly plain objects). */
import type { Chunk } from './mint-plan.js';
import type { KernelKind } from './sha256-kernel.js';

export interface WorkerConfig {
  /** Kernel to use; the fastest available when absent. */
  readonly kernel?: KernelKind;
  /** Milliseconds the warm-up may take at most (0: no warm-up). */
  readonly warmupMs: number;
}

export interface SearchRequest {
  readonly type: 'search';
  readonly job: number;
  readonly id: Uint8Array;
  readonly bits: number;
  readonly chunk: Chunk;
}

export type WorkerMessage =
  | { readonly type: 'ready'; readonly kernel: KernelKind; readonly warmupMs: number }
  | {
      readonly type: 'result';
      readonly job: number;
      readonly chunk: Chunk;
      /** The nonce found in the chunk, -1 if none. */
      readonly nonce: number;
      /** Nonces hashed for this chunk. */
      readonly hashes: number;
    }
  | { readonly type: 'failed'; readonly job: number; readonly message: string };
