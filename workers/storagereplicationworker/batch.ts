/**
 * Opportunistic batching of one kind of database call across the jobs of a process: a call made
 * while a batch is in flight waits for it and joins the next, so N concurrent jobs cost about one
 * round trip per batch instead of N (Postgres round trips, not rows, bound replication of small
 * blobs on a busy machine). An idle batcher sends a lone call at once: no timer, no added latency.
 */
export class Batcher<I, O> {
  private pending: { item: I; resolve(value: O): void; reject(error: unknown): void }[] = [];
  private running = false;

  /** `run` answers a batch in order (one output per input); it may throw, failing the whole batch. */
  constructor(private readonly run: (items: I[]) => Promise<O[]>, private readonly maxBatch = 64) {}

  call(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (!this.running) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, this.maxBatch);
      try {
        const outputs = await this.run(batch.map((entry) => entry.item));
        batch.forEach((entry, i) => entry.resolve(outputs[i]!));
      } catch (error) {
        for (const entry of batch) entry.reject(error);
      }
    }
    this.running = false;
  }
}
