/**
 * Minting on every core: a pool of worker threads, started once and kept warm, that mints one
 * cluster at a time (jobs queue) by handing out nonce ranges (mint-plan.ts) to whichever worker
 * is free. Cancelling a job just stops handing out ranges, so workers are free again within one
 * chunk (about 10 ms with the WASM kernel) and stay usable.
 *
 * Process lifetime: workers are ref'd while they warm up or have work. After unref() an idle
 * pool does not keep the process alive; after close() the workers are gone.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { P2pdbError, fail } from '../errors.js';
import { ownedCopy } from '../util/bytes.js';
import { POW_TOKENS } from './cluster.js';
import { encodeProof, mintTokenBits } from './mint.js';
import { MintPlan } from './mint-plan.js';
import type { SearchRequest, WorkerConfig, WorkerMessage } from './mint-protocol.js';
import type { KernelKind } from './sha256-kernel.js';

export interface MintPoolOptions {
  /** Worker threads; every core by default. */
  threads?: number;
  /** Search kernel; the fastest available by default. */
  kernel?: KernelKind;
  /** Nonces per chunk: bounds how long a cancelled job keeps a worker (default 2^16). */
  chunkSize?: number;
  /** Least time between two progress reports (default 100 ms); the last one always comes. */
  progressIntervalMs?: number;
  /** Longest warm-up of a new worker (default 1000 ms; it usually takes a few ms). */
  warmupMs?: number;
}

export interface MintProgress {
  tokensDone: number;
  tokens: number;
  /** Hashes computed so far for this job. */
  hashes: number;
}

export interface MintOptions {
  onProgress?: (progress: MintProgress) => void;
  signal?: AbortSignal;
}

interface Slot {
  readonly worker: Worker;
  ready: boolean;
  /** The job whose chunk the worker is searching, if any. */
  busyWith: number | undefined;
  kernel?: KernelKind;
}

interface Job {
  readonly seq: number;
  readonly id: Uint8Array;
  readonly bits: number;
  readonly plan: MintPlan;
  readonly onProgress: ((progress: MintProgress) => void) | undefined;
  hashes: number;
  lastProgress: number;
  resolve(proof: Buffer): void;
  reject(error: unknown): void;
  detach(): void;
}

/** The rejection of a cancelled mint: an Error named 'AbortError', like fetch's. */
export function abortError(message: string, cause?: unknown): Error {
  const error = new Error(message, cause === undefined ? undefined : { cause });
  error.name = 'AbortError';
  return error;
}

const WORKER_URL = new URL('./mint-worker.js', import.meta.url);
// Workers inherit the parent's flags, but --input-type (node -e scripts) is refused for a file.
const WORKER_EXEC_ARGV = process.execArgv.filter(
  (a, i, all) => !a.startsWith('--input-type=') && a !== '--input-type' && all[i - 1] !== '--input-type',
);

export class MintPool {
  readonly threads: number;
  private readonly chunkSize: number;
  private readonly progressIntervalMs: number;
  private readonly config: WorkerConfig;
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private active: Job | undefined;
  private seq = 0;
  private unrefed = false;
  private closed = false;
  private closing: Promise<void> | undefined;
  private broken: Error | undefined;
  private readonly warm: Promise<void>;
  private warmDone!: () => void;
  private warmFailed!: (e: Error) => void;

  constructor(options: MintPoolOptions = {}) {
    this.threads = options.threads ?? availableParallelism();
    this.chunkSize = options.chunkSize ?? 2 ** 16;
    this.progressIntervalMs = options.progressIntervalMs ?? 100;
    if (!Number.isInteger(this.threads) || this.threads < 1) fail('bad_request', 'threads must be a positive integer');
    if (!Number.isInteger(this.chunkSize) || this.chunkSize < 1 || this.chunkSize > 2 ** 30) {
      fail('bad_request', 'chunkSize must be an integer from 1 to 2^30');
    }
    this.config = { ...(options.kernel ? { kernel: options.kernel } : {}), warmupMs: options.warmupMs ?? 1000 };
    this.warm = new Promise<void>((resolve, reject) => {
      this.warmDone = resolve;
      this.warmFailed = reject;
    });
    // Nobody has to ask for readiness: its failure also reaches every job.
    this.warm.catch(() => {});
    for (let i = 0; i < this.threads; i++) this.slots.push(this.spawn());
  }

  /** Resolves once every worker is warm. Minting does not need to wait for it. */
  ready(): Promise<void> {
    return this.warm;
  }

  /** The kernel the workers run, once one of them is ready. */
  get kernel(): KernelKind | undefined {
    return this.slots.find((s) => s.ready)?.kernel;
  }

  /** A proof worth at least `clusterBits` for `id`. Rejects with an AbortError when cancelled. */
  mint(id: Uint8Array, clusterBits: number, options: MintOptions = {}): Promise<Buffer> {
    let bits: number;
    try {
      bits = mintTokenBits(id, clusterBits);
    } catch (e) {
      return Promise.reject(e);
    }
    if (this.broken) return Promise.reject(this.broken);
    if (this.closed) return Promise.reject(new P2pdbError('internal', 'the mint pool is closed'));
    const { signal, onProgress } = options;
    if (signal?.aborted) return Promise.reject(abortError('the mint was aborted', signal.reason));
    return new Promise<Buffer>((resolve, reject) => {
      const job: Job = {
        seq: ++this.seq,
        id: ownedCopy(id),
        bits,
        plan: new MintPlan(POW_TOKENS, this.chunkSize),
        onProgress,
        hashes: 0,
        lastProgress: 0,
        resolve,
        reject,
        detach: () => {},
      };
      if (signal) {
        const onAbort = () => this.finish(job, abortError('the mint was aborted', signal.reason));
        signal.addEventListener('abort', onAbort, { once: true });
        job.detach = () => signal.removeEventListener('abort', onAbort);
      }
      this.queue.push(job);
      this.dispatch();
    });
  }

  /** Lets the process exit while the pool is idle (it is held while jobs are queued or running). */
  unref(): this {
    this.unrefed = true;
    this.updateRefs();
    return this;
  }

  ref(): this {
    this.unrefed = false;
    this.updateRefs();
    return this;
  }

  /** Cancels every job (AbortError) and stops the workers. */
  close(): Promise<void> {
    if (!this.closing) {
      this.closed = true;
      const closed = abortError('the mint pool was closed');
      for (const job of [...(this.active ? [this.active] : []), ...this.queue]) this.finish(job, closed);
      this.warmFailed(closed);
      this.closing = Promise.all(this.slots.map((s) => s.worker.terminate())).then(() => undefined);
    }
    return this.closing;
  }

  private spawn(): Slot {
    const worker = new Worker(WORKER_URL, { workerData: this.config, execArgv: WORKER_EXEC_ARGV });
    const slot: Slot = { worker, ready: false, busyWith: undefined };
    worker.on('message', (msg: WorkerMessage) => this.onMessage(slot, msg));
    worker.on('error', (e: Error) => this.onWorkerGone(slot, e.message));
    worker.on('exit', (code: number) => this.onWorkerGone(slot, `exited with code ${code}`));
    return slot;
  }

  private onMessage(slot: Slot, msg: WorkerMessage): void {
    if (this.closed) return;
    if (msg.type === 'ready') {
      slot.ready = true;
      slot.kernel = msg.kernel;
      if (this.slots.every((s) => s.ready)) this.warmDone();
    } else {
      slot.busyWith = undefined;
      const job = this.active;
      if (job?.seq === msg.job) {
        if (msg.type === 'failed') {
          this.finish(job, new P2pdbError('internal', `mint worker failed: ${msg.message}`));
        } else {
          job.hashes += msg.hashes;
          job.plan.settle(msg.chunk, msg.nonce < 0 ? undefined : msg.nonce);
          if (job.plan.done) this.finish(job);
          else this.report(job, false);
        }
      }
    }
    this.dispatch();
  }

  /**
   * A worker that dies while warming up would die again: the pool is broken. One that dies
   * later is replaced, and the job it was working on fails (its chunk is lost).
   */
  private onWorkerGone(slot: Slot, reason: string): void {
    const index = this.slots.indexOf(slot);
    if (this.closed || index < 0) return;
    const error = new P2pdbError('internal', `mint worker failed: ${reason}`);
    if (!slot.ready) {
      this.broken = error;
      this.warmFailed(error);
      for (const job of [...(this.active ? [this.active] : []), ...this.queue]) this.finish(job, error);
      void this.close();
      return;
    }
    this.slots.splice(index, 1, this.spawn());
    if (this.active && slot.busyWith === this.active.seq) this.finish(this.active, error);
    this.dispatch();
  }

  /** Starts the next job if none is running and gives every free worker a chunk. */
  private dispatch(): void {
    if (this.closed || this.broken) return;
    if (!this.active && this.queue.length > 0) {
      this.active = this.queue.shift()!;
      this.active.lastProgress = performance.now();
    }
    const job = this.active;
    if (job) {
      for (const slot of this.slots) {
        if (!slot.ready || slot.busyWith !== undefined) continue;
        const chunk = job.plan.take();
        if (!chunk) break;
        slot.busyWith = job.seq;
        const req: SearchRequest = { type: 'search', job: job.seq, id: job.id, bits: job.bits, chunk };
        slot.worker.postMessage(req);
      }
    }
    this.updateRefs();
  }

  /** Settles a job, queued or running: with its proof, or rejected with `error`. */
  private finish(job: Job, error?: unknown): void {
    job.detach();
    if (this.active === job) this.active = undefined;
    else {
      const at = this.queue.indexOf(job);
      if (at < 0) return;
      this.queue.splice(at, 1);
    }
    if (error !== undefined) job.reject(error);
    else {
      this.report(job, true);
      job.resolve(encodeProof(job.plan.nonces));
    }
    this.dispatch();
  }

  private report(job: Job, final: boolean): void {
    if (!job.onProgress) return;
    const now = performance.now();
    if (!final && now - job.lastProgress < this.progressIntervalMs) return;
    job.lastProgress = now;
    try {
      job.onProgress({ tokensDone: job.plan.tokensDone, tokens: POW_TOKENS, hashes: job.hashes });
    } catch (e) {
      // A failing callback fails its own job, not the pool.
      if (!final) this.finish(job, e);
    }
  }

  private updateRefs(): void {
    const hold = !this.unrefed || this.active !== undefined || this.queue.length > 0 || this.slots.some((s) => !s.ready);
    for (const slot of this.slots) {
      if (hold) slot.worker.ref();
      else slot.worker.unref();
    }
  }
}
