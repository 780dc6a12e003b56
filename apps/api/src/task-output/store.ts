// Storage of batch tasks' console output and results (PostgreSQL through @deskpool/db).
import type { PrismaClient } from '@deskpool/db';
import type { Clock } from '../clock.js';
import { systemClock } from '../clock.js';
import type { LogPosition, OutputChunk } from './assemble.js';

/**
 * Console output kept per task. Past it the OLDEST chunks are dropped: a batch log's end holds
 * the failure or the result a submitter looks for, and `logs -f` must keep showing new output;
 * the beginning is usually the guest booting. The log says how much was dropped.
 */
export const DEFAULT_MAX_LOG_BYTES_PER_TASK = 16 * 1024 * 1024;

/** A task-output frame as the agent gateway hands it over (see @deskpool/protocol). */
export interface TaskOutputPiece {
  taskId: string;
  generation: number;
  offset: number;
  data: string;
  /** When the agent read it (ISO timestamp). */
  at: string;
}

/** A task-finished frame as the agent gateway hands it over. */
export interface TaskFinishedReport {
  taskId: string;
  generation: number;
  exitCode: number | null;
  result?: string | undefined;
  reason?: string | undefined;
  at: string;
}

export type AppendOutcome = 'stored' | 'duplicate' | 'dropped' | 'unknown-task';

export interface TaskOutputStoreOptions {
  clock?: Clock;
  maxLogBytesPerTask?: number;
}

export interface LogMeta {
  storedBytes: number;
  droppedBytes: number;
}

/**
 * Writes and reads task output. Its `append` and `finished` fit the agent gateway's
 * TaskOutputSink; both are idempotent, so a frame re-sent after a lost ack changes nothing.
 */
export class TaskOutputStore {
  readonly maxLogBytesPerTask: number;
  private readonly clock: Clock;

  constructor(
    private readonly prisma: PrismaClient,
    options: TaskOutputStoreOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.maxLogBytesPerTask = options.maxLogBytesPerTask ?? DEFAULT_MAX_LOG_BYTES_PER_TASK;
  }

  async append(_hostId: string, piece: TaskOutputPiece): Promise<void> {
    await this.appendPiece(piece);
  }

  async finished(_hostId: string, report: TaskFinishedReport): Promise<void> {
    await this.recordFinished(report);
  }

  /**
   * Stores one chunk, keyed by (task, generation, offset): the same key twice stores once.
   * Serialized per task (row lock on its task_output_logs row) so the size accounting and the
   * dropping of old chunks stay exact with several API processes writing.
   */
  async appendPiece(piece: TaskOutputPiece): Promise<AppendOutcome> {
    if (!UUID.test(piece.taskId)) return 'unknown-task';
    const length = Buffer.byteLength(piece.data, 'utf8');
    if (length === 0) return 'duplicate';
    const now = this.clock.now();
    return this.prisma.$transaction(async (tx) => {
      const task = await tx.batchTask.findUnique({ where: { id: piece.taskId }, select: { id: true } });
      if (!task) return 'unknown-task';
      await tx.$executeRaw`INSERT INTO task_output_logs (task_id, updated_at) VALUES (${piece.taskId}::uuid, ${now}) ON CONFLICT (task_id) DO NOTHING`;
      const [log] = await tx.$queryRaw<{ stored: bigint; dropped: bigint; kg: number; ko: bigint }[]>`
        SELECT stored_bytes AS stored, dropped_bytes AS dropped, kept_from_generation AS kg, kept_from_offset AS ko
        FROM task_output_logs WHERE task_id = ${piece.taskId}::uuid FOR UPDATE`;
      let stored = Number(log!.stored);
      let dropped = Number(log!.dropped);
      let keptFrom = { generation: log!.kg, offset: Number(log!.ko) };
      // A late replay of a chunk the cap already dropped must not come back.
      if (dropped > 0 && !after({ generation: piece.generation, offset: piece.offset }, keptFrom)) return 'dropped';
      const inserted = await tx.$executeRaw`
        INSERT INTO task_output_chunks (task_id, generation, "offset", length, data, at, received_at)
        VALUES (${piece.taskId}::uuid, ${piece.generation}, ${piece.offset}, ${length}, ${piece.data}, ${new Date(piece.at)}, ${now})
        ON CONFLICT (task_id, generation, "offset") DO NOTHING`;
      if (inserted === 0) return 'duplicate';
      stored += length;
      while (stored > this.maxLogBytesPerTask) {
        const oldest = await tx.$queryRaw<{ generation: number; offset: bigint; length: number }[]>`
          SELECT generation, "offset", length FROM task_output_chunks WHERE task_id = ${piece.taskId}::uuid
          ORDER BY generation, "offset" LIMIT 256`;
        let progressed = false;
        for (const c of oldest) {
          // The newest chunk always stays, whatever the cap.
          if (c.generation === piece.generation && Number(c.offset) === piece.offset) break;
          if (stored <= this.maxLogBytesPerTask) break;
          await tx.$executeRaw`DELETE FROM task_output_chunks WHERE task_id = ${piece.taskId}::uuid AND generation = ${c.generation} AND "offset" = ${c.offset}`;
          stored -= c.length;
          dropped += c.length;
          keptFrom = { generation: c.generation, offset: Number(c.offset) };
          progressed = true;
        }
        if (!progressed) break;
      }
      await tx.$executeRaw`
        UPDATE task_output_logs SET stored_bytes = ${stored}, dropped_bytes = ${dropped},
          kept_from_generation = ${keptFrom.generation}, kept_from_offset = ${keptFrom.offset}, updated_at = ${now}
        WHERE task_id = ${piece.taskId}::uuid`;
      return 'stored';
    });
  }

  /**
   * Records how a task's run ended. A report for the generation already recorded (a replay) or
   * an older one changes nothing; a newer generation's report replaces it (the task ran again).
   */
  async recordFinished(report: TaskFinishedReport): Promise<'recorded' | 'unchanged' | 'unknown-task'> {
    if (!UUID.test(report.taskId)) return 'unknown-task';
    const now = this.clock.now();
    const task = await this.prisma.batchTask.findUnique({ where: { id: report.taskId }, select: { id: true } });
    if (!task) return 'unknown-task';
    const changed = await this.prisma.$executeRaw`
      INSERT INTO task_results (task_id, generation, exit_code, result, reason, at, recorded_at)
      VALUES (${report.taskId}::uuid, ${report.generation}, ${report.exitCode}, ${report.result ?? null}, ${report.reason ?? null}, ${new Date(report.at)}, ${now})
      ON CONFLICT (task_id) DO UPDATE SET generation = EXCLUDED.generation, exit_code = EXCLUDED.exit_code, result = EXCLUDED.result,
        reason = EXCLUDED.reason, at = EXCLUDED.at, recorded_at = EXCLUDED.recorded_at
      WHERE task_results.generation < EXCLUDED.generation`;
    return changed > 0 ? 'recorded' : 'unchanged';
  }

  /** Chunks after `from` (all when null), in stream order, at most `limit`. */
  async chunksAfter(taskId: string, from: LogPosition | null, limit = 2048): Promise<OutputChunk[]> {
    const rows = from === null
      ? await this.prisma.$queryRaw<{ generation: number; offset: bigint; data: string }[]>`
          SELECT generation, "offset", data FROM task_output_chunks WHERE task_id = ${taskId}::uuid
          ORDER BY generation, "offset" LIMIT ${limit}`
      : await this.prisma.$queryRaw<{ generation: number; offset: bigint; data: string }[]>`
          SELECT generation, "offset", data FROM task_output_chunks
          WHERE task_id = ${taskId}::uuid AND (generation > ${from.generation} OR (generation = ${from.generation} AND "offset" + length > ${from.end}))
          ORDER BY generation, "offset" LIMIT ${limit}`;
    return rows.map((r) => ({ generation: r.generation, offset: Number(r.offset), data: r.data }));
  }

  async logMeta(taskId: string): Promise<LogMeta> {
    const log = await this.prisma.taskOutputLog.findUnique({ where: { taskId } });
    return { storedBytes: Number(log?.storedBytes ?? 0n), droppedBytes: Number(log?.droppedBytes ?? 0n) };
  }
}

function after(a: { generation: number; offset: number }, b: { generation: number; offset: number }): boolean {
  return a.generation > b.generation || (a.generation === b.generation && a.offset > b.offset);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
