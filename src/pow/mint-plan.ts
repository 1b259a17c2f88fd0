/**
 * Which nonce range to search next, for a pool of workers minting one cluster. Pure state, no I/O.
 *
 * Work is handed out in chunks of consecutive nonces of one token. A free worker gets the
 * unsolved token with the fewest chunks in flight (lowest index first), so while tokens remain
 * each worker keeps to its own token, and at the end the last tokens are shared by every
 * worker over disjoint ranges: all cores stay busy until the cluster is complete, and at most
 * one chunk per worker is wasted when a shared token is solved.
 */
export interface Chunk {
  readonly token: number;
  readonly start: number;
  readonly count: number;
}

export class MintPlan {
  /** The nonce found for each token, once found. */
  readonly nonces: (number | undefined)[];
  private readonly nextStart: number[];
  private readonly inFlight: number[];
  private solved = 0;

  constructor(
    readonly tokens: number,
    readonly chunkSize: number,
  ) {
    this.nonces = new Array<number | undefined>(tokens).fill(undefined);
    this.nextStart = new Array<number>(tokens).fill(0);
    this.inFlight = new Array<number>(tokens).fill(0);
  }

  get tokensDone(): number {
    return this.solved;
  }

  get done(): boolean {
    return this.solved === this.tokens;
  }

  /** The next chunk to search, or undefined once every token is solved. */
  take(): Chunk | undefined {
    let best = -1;
    for (let t = 0; t < this.tokens; t++) {
      if (this.nonces[t] !== undefined) continue;
      if (best < 0 || this.inFlight[t]! < this.inFlight[best]!) best = t;
    }
    if (best < 0) return undefined;
    const start = this.nextStart[best]!;
    this.nextStart[best] = start + this.chunkSize;
    this.inFlight[best]!++;
    return { token: best, start, count: this.chunkSize };
  }

  /** Records a searched chunk and the nonce it found, if any; the first nonce found for a token wins. */
  settle(chunk: Chunk, nonce: number | undefined): void {
    this.inFlight[chunk.token]!--;
    if (nonce === undefined || this.nonces[chunk.token] !== undefined) return;
    this.nonces[chunk.token] = nonce;
    this.solved++;
  }
}
