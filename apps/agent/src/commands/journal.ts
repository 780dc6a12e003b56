import { promises as fs } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { AGENT_COMMAND_KINDS, OP_OUTCOMES, reconcileExpectSchema } from '@deskpool/protocol';

const beginSchema = z
  .object({
    t: z.literal('begin'),
    key: z.string(),
    kind: z.enum(AGENT_COMMAND_KINDS),
    vmId: z.string().optional(),
    domainName: z.string().optional(),
    generation: z.number().int().optional(),
    /** What the command asked for, for reconciliation (e.g. a state file path). */
    params: z.record(z.string(), z.unknown()),
    at: z.string(),
  })
  .strict();

const endSchema = z
  .object({
    t: z.literal('end'),
    key: z.string(),
    outcome: z.enum(OP_OUTCOMES),
    result: z.record(z.string(), z.unknown()).optional(),
    error: z.object({ code: z.string(), message: z.string() }).strict().optional(),
    /** The outcome was worked out after a restart, from the hypervisor's actual state. */
    reconciled: z.boolean().optional(),
    at: z.string(),
  })
  .strict();

export const journalEntrySchema = z.discriminatedUnion('t', [beginSchema, endSchema]);
export type JournalBegin = z.infer<typeof beginSchema>;
export type JournalEnd = z.infer<typeof endSchema>;
export type JournalEntry = JournalBegin | JournalEnd;

export interface JournalRecord {
  begin?: JournalBegin;
  end?: JournalEnd;
}

export class JournalCorrupt extends Error {
  constructor(file: string, line: number, reason: string) {
    super(`command journal ${file} line ${line} is unreadable (${reason}); move the file aside to start a fresh journal, after checking the VMs on this host by hand`);
  }
}

/**
 * The agent's memory of commands: append-only JSON lines, each fsynced before the agent acts or
 * answers, so a crash never loses an accepted command or a finished result. Only a torn final
 * line (a crash mid-write) is tolerated on load; damage anywhere else stops the agent.
 */
export class CommandJournal {
  private readonly records = new Map<string, JournalRecord>();
  private readonly highestGeneration = new Map<string, number>();
  /** Every domain a command of the control plane ever named on this host. */
  private readonly knownDomains = new Set<string>();
  /** The latest command begun for each VM or task, in journal order. */
  private readonly latestBegin = new Map<string, JournalBegin>();
  private writeChain: Promise<void> = Promise.resolve();

  private constructor(
    readonly file: string,
    private readonly handle: fs.FileHandle,
  ) {}

  static async open(file: string): Promise<CommandJournal> {
    await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    let text = '';
    try {
      text = await fs.readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const lines = text.split('\n');
    const entries: JournalEntry[] = [];
    lines.forEach((line, index) => {
      if (line.trim() === '') return;
      const isLast = index >= lines.length - 2 && !text.endsWith('\n');
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        if (isLast) return;
        throw new JournalCorrupt(file, index + 1, 'not JSON');
      }
      const entry = journalEntrySchema.safeParse(parsed);
      if (!entry.success) throw new JournalCorrupt(file, index + 1, entry.error.issues[0]?.message ?? 'invalid');
      entries.push(entry.data);
    });
    if (text.length > 0 && !text.endsWith('\n')) {
      // Drop the torn tail so the next append starts on a clean line.
      const keep = text.slice(0, text.lastIndexOf('\n') + 1);
      await fs.writeFile(file, keep, { mode: 0o600 });
    }
    const handle = await fs.open(file, 'a', 0o600);
    const journal = new CommandJournal(file, handle);
    for (const entry of entries) journal.index(entry);
    return journal;
  }

  private index(entry: JournalEntry): void {
    const record = this.records.get(entry.key) ?? {};
    if (entry.t === 'begin') {
      record.begin = entry;
      if (entry.vmId !== undefined) this.latestBegin.set(entry.vmId, entry);
      if (entry.domainName !== undefined) this.knownDomains.add(entry.domainName);
      if (entry.vmId !== undefined && entry.generation !== undefined) {
        this.raiseGeneration(entry.vmId, entry.generation);
      }
      if (entry.kind === 'reconcile') {
        // A reconcile states the generation of everything the host keeps: commands older than
        // that were issued before the fence and must be refused from now on.
        const expect = reconcileExpectSchema.safeParse(entry.params.expect);
        if (expect.success) {
          for (const vm of expect.data.vms) {
            this.raiseGeneration(vm.vmId, vm.generation);
            this.knownDomains.add(vm.domainName);
          }
          for (const task of expect.data.tasks) {
            this.raiseGeneration(task.taskId, task.generation);
            this.knownDomains.add(task.domainName);
          }
        }
      }
    } else {
      record.end = entry;
    }
    this.records.set(entry.key, record);
  }

  private raiseGeneration(id: string, generation: number): void {
    this.highestGeneration.set(id, Math.max(generation, this.highestGeneration.get(id) ?? -1));
  }

  /** Durably appends, then updates the in-memory view (so the view never runs ahead of the disk). */
  append(entry: JournalEntry): Promise<void> {
    const write = this.writeChain.then(async () => {
      await this.handle.appendFile(`${JSON.stringify(entry)}\n`, 'utf8');
      await this.handle.datasync();
      this.index(entry);
    });
    this.writeChain = write.catch(() => undefined);
    return write;
  }

  get(key: string): JournalRecord | undefined {
    return this.records.get(key);
  }

  /** Highest fencing generation this agent accepted a command for, per VM. */
  generationOf(vmId: string): number | undefined {
    return this.highestGeneration.get(vmId);
  }

  /**
   * Whether the latest command for this batch task (at `generation` or later) checkpoints or
   * stops it (under way or done): its VM going down is then that command's doing, not the
   * task's end.
   */
  taskLeaving(taskId: string, generation: number): boolean {
    const last = this.latestBegin.get(taskId);
    if (last === undefined || (last.kind !== 'checkpoint-batch' && last.kind !== 'stop-batch') || (last.generation ?? 0) < generation) return false;
    // A checkpoint that failed left the VM running: its later power-off is the task's own end.
    const end = this.records.get(last.key)?.end;
    return end === undefined || end.outcome === 'succeeded';
  }

  /** Whether deskpool ever managed this domain here (a reconcile may only touch those). */
  knowsDomain(name: string): boolean {
    return this.knownDomains.has(name);
  }

  /** Commands begun but never finished: an agent restart interrupted them. */
  incomplete(): JournalBegin[] {
    return [...this.records.values()].filter((r) => r.begin && !r.end).map((r) => r.begin as JournalBegin);
  }

  async close(): Promise<void> {
    await this.writeChain;
    await this.handle.close();
  }
}
