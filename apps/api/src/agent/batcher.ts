/**
 * Collects calls for up to `maxDelayMs` (or `maxBatch` of them) and hands them to `write` in one
 * go; each call resolves with its own answer once its batch was written, or rejects with the
 * batch's error. Used where thousands of agents call at once and one statement per call would
 * queue on the database's connection pool.
 */
export class Batcher<Item, Answer> {
  private pending: { item: Item; resolve(answer: Answer): void; reject(err: unknown): void }[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    /** Writes a batch; answers in the order of the items. */
    private readonly write: (items: Item[]) => Promise<Answer[]>,
    private readonly maxDelayMs: number,
    private readonly maxBatch: number,
  ) {}

  add(item: Item): Promise<Answer> {
    return new Promise((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (this.pending.length >= this.maxBatch) void this.flush();
      else this.timer ??= setTimeout(() => void this.flush(), this.maxDelayMs);
    });
  }

  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return;
    try {
      const answers = await this.write(batch.map((p) => p.item));
      batch.forEach((p, i) => p.resolve(answers[i] as Answer));
    } catch (err) {
      for (const p of batch) p.reject(err);
    }
  }
}
