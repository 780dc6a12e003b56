/**
 * Collects calls for up to `maxDelayMs` (or `maxBatch` of them) and hands them to `write` in one
 * go; each call resolves with its own answer once its batch was written, or rejects with the
 * batch's error. Used where thousands of agents call at once and one statement per call would
 * queue on the database's connection pool.
 *
 * One batch is written at a time: while it is, new calls gather for the next one. With a write
 * per timer tick instead, a slow database let heartbeat batches pile up on every pooled
 * connection, and a person's presence frame queued behind them for seconds. Under load the
 * batches grow (to `maxBatch`) rather than multiply.
 */
export class Batcher<Item, Answer> {
  private pending: { item: Item; resolve(answer: Answer): void; reject(err: unknown): void }[] = [];
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;

  constructor(
    /** Writes a batch; answers in the order of the items. */
    private readonly write: (items: Item[]) => Promise<Answer[]>,
    private readonly maxDelayMs: number,
    private readonly maxBatch: number,
  ) {}

  add(item: Item): Promise<Answer> {
    return new Promise((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      this.schedule();
    });
  }

  /** Writes everything pending now (after the batch being written, if any). */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    while (this.writing) await this.writing;
    while (this.pending.length > 0) await this.writeNext();
  }

  /** A full batch goes at once, a partial one after the delay; never while one is being written. */
  private schedule(): void {
    if (this.writing || this.pending.length === 0) return;
    if (this.pending.length >= this.maxBatch) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = undefined;
      void this.writeNext();
    } else this.timer ??= setTimeout(() => {
      this.timer = undefined;
      void this.writeNext();
    }, this.maxDelayMs);
  }

  private async writeNext(): Promise<void> {
    if (this.writing) return this.writing;
    const batch = this.pending.splice(0, this.maxBatch);
    if (batch.length === 0) return;
    this.writing = (async () => {
      try {
        const answers = await this.write(batch.map((p) => p.item));
        batch.forEach((p, i) => p.resolve(answers[i] as Answer));
      } catch (err) {
        for (const p of batch) p.reject(err);
      }
    })();
    try {
      await this.writing;
    } finally {
      this.writing = undefined;
      this.schedule();
    }
  }
}
