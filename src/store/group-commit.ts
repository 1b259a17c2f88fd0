/**
 * Group commit: concurrent submit() calls queue up; one drain loop hands everything queued
 * (up to maxItems, whole calls only) to one commit, so many callers share one transaction and
 * one fsync. Each call settles only when the commit that holds it has finished.
 */
interface Pending<I, O> {
  items: I[];
  resolve: (out: O[]) => void;
  reject: (err: unknown) => void;
}

/** Commits a batch of calls; returns one output array per call, in order. */
export type CommitFn<I, O> = (calls: I[][]) => Promise<O[][]>;

export class GroupCommit<I, O> {
  private queue: Pending<I, O>[] = [];
  private draining: Promise<void> | null = null;

  constructor(
    private readonly commit: CommitFn<I, O>,
    private readonly maxItems: number,
  ) {}

  submit(items: I[]): Promise<O[]> {
    return new Promise<O[]>((resolve, reject) => {
      this.queue.push({ items, resolve, reject });
      this.draining ??= this.drain();
    });
  }

  /** Resolves once everything submitted so far has settled. */
  async idle(): Promise<void> {
    while (this.draining) await this.draining;
  }

  private take(): Pending<I, O>[] {
    // Always at least one call, whole: a call's entries commit (or fail) together.
    let n = 0;
    let total = 0;
    while (n < this.queue.length && (n === 0 || total + this.queue[n]!.items.length <= this.maxItems)) {
      total += this.queue[n]!.items.length;
      n++;
    }
    return this.queue.splice(0, n);
  }

  private async drain(): Promise<void> {
    // Let calls made in the same tick join the first batch.
    await Promise.resolve();
    while (this.queue.length > 0) {
      const batch = this.take();
      try {
        const out = await this.commit(batch.map((p) => p.items));
        batch.forEach((p, i) => p.resolve(out[i]!));
      } catch (err) {
        for (const p of batch) p.reject(err);
      }
    }
    this.draining = null;
  }
}
