// The agent's record of the batch tasks it runs: which domain, which generation, how far their
// console log was sent, and whether their end was reported. Survives agent restarts, so output
// is not sent again from zero and a finished task is reported once.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

const watchedTaskSchema = z
  .object({
    taskId: z.string().min(1),
    domainName: z.string().min(1),
    generation: z.number().int().nonnegative(),
    logPath: z.string().min(1),
    /** Added to a byte position in this PC's log to give its offset in the task's whole console log. */
    shift: z.number().int(),
    /** Bytes of this PC's log already sent as task-output. */
    sent: z.number().int().nonnegative(),
    /** running: watched; finished: task-finished was sent; left: checkpointed or stopped here (it may resume elsewhere). */
    status: z.enum(['running', 'finished', 'left']),
  })
  .strict();
export type WatchedTask = z.infer<typeof watchedTaskSchema>;

const fileSchema = z.object({ version: z.literal(1), tasks: z.array(watchedTaskSchema) }).strict();

export class BatchTaskStoreCorrupt extends Error {
  constructor(file: string, reason: string) {
    super(`batch task record ${file} is unreadable (${reason}); move it aside to start fresh (running tasks' output is then sent again from the start of their logs)`);
  }
}

export class BatchTaskStore {
  private readonly tasks = new Map<string, WatchedTask>();
  private writeChain: Promise<void> = Promise.resolve();

  private constructor(readonly file: string) {}

  static async open(file: string): Promise<BatchTaskStore> {
    await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    const store = new BatchTaskStore(file);
    const text = await fs.readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return null;
      throw err;
    });
    if (text !== null) {
      let raw: unknown;
      try {
        raw = JSON.parse(text);
      } catch {
        throw new BatchTaskStoreCorrupt(file, 'not JSON');
      }
      const parsed = fileSchema.safeParse(raw);
      if (!parsed.success) throw new BatchTaskStoreCorrupt(file, parsed.error.issues[0]?.message ?? 'invalid');
      for (const t of parsed.data.tasks) store.tasks.set(t.taskId, t);
    }
    return store;
  }

  get(taskId: string): WatchedTask | undefined {
    const t = this.tasks.get(taskId);
    return t ? { ...t } : undefined;
  }

  all(): WatchedTask[] {
    return [...this.tasks.values()].map((t) => ({ ...t }));
  }

  /** Records the change durably (write to a temporary file, fsync, rename). */
  put(task: WatchedTask): Promise<void> {
    this.tasks.set(task.taskId, { ...task });
    return this.flush();
  }

  remove(taskId: string): Promise<void> {
    this.tasks.delete(taskId);
    return this.flush();
  }

  private flush(): Promise<void> {
    const snapshot = JSON.stringify({ version: 1, tasks: [...this.tasks.values()] });
    const write = this.writeChain.then(async () => {
      const tmp = `${this.file}.tmp`;
      const handle = await fs.open(tmp, 'w', 0o600);
      try {
        await handle.writeFile(snapshot, 'utf8');
        await handle.datasync();
      } finally {
        await handle.close();
      }
      await fs.rename(tmp, this.file);
    });
    this.writeChain = write.catch(() => undefined);
    return write;
  }

  async close(): Promise<void> {
    await this.writeChain;
  }
}
