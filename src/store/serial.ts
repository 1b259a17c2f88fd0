/** Runs read-then-write sequences one at a time, so a bound checked by one holds when it writes. */
export class SerialWrites {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => {});
    return next;
  }

  /** Resolves once every write queued so far has settled. */
  async idle(): Promise<void> {
    await this.tail;
  }
}
