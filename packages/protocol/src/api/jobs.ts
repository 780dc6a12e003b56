import { z } from 'zod';
import { JOB_LIMITS } from '../job-spec.js';
import { pageQuerySchema, timestampSchema } from './common.js';

export const JOB_STATES = ['queued', 'running', 'succeeded', 'failed', 'cancelled', 'deadline_missed'] as const;
export const TASK_STATES = ['queued', 'placed', 'running', 'checkpointing', 'checkpointed', 'stopping', 'succeeded', 'failed', 'cancelled', 'deadline_missed'] as const;
export const TERMINAL_TASK_STATES = ['succeeded', 'failed', 'cancelled', 'deadline_missed'] as const;
/** Tasks in these states hold a VM or saved state on a host. */
export const LIVE_TASK_STATES = ['placed', 'running', 'checkpointing', 'checkpointed', 'stopping'] as const;
export const TERMINAL_JOB_STATES = ['succeeded', 'failed', 'cancelled', 'deadline_missed'] as const;

export const listJobsQuerySchema = pageQuerySchema.extend({ state: z.enum(JOB_STATES).optional() });

export const taskSchema = z.object({
  id: z.uuid(),
  index: z.int(),
  state: z.enum(TASK_STATES),
  hostId: z.uuid().nullable(),
  attempts: z.int(),
  checkpointHostId: z.uuid().nullable(),
  checkpointPath: z.string().nullable(),
  progress: z.number(),
  exitStatus: z.int().nullable(),
  output: z.string().nullable(),
  generation: z.int(),
  startedAt: timestampSchema.nullable(),
  finishedAt: timestampSchema.nullable(),
  updatedAt: timestampSchema,
});
export type TaskView = z.infer<typeof taskSchema>;

export const jobSchema = z.object({
  id: z.uuid(),
  name: z.string(),
  state: z.enum(JOB_STATES),
  priority: z.int(),
  taskCount: z.int(),
  submitterUserId: z.uuid().nullable(),
  submittedBy: z.string(),
  poolId: z.uuid().nullable(),
  spec: z.unknown(),
  deadline: timestampSchema.nullable(),
  cancelRequestedAt: timestampSchema.nullable(),
  startedAt: timestampSchema.nullable(),
  finishedAt: timestampSchema.nullable(),
  /** How many tasks are in each state. */
  taskStates: z.record(z.string(), z.int()),
  version: z.int(),
  createdAt: timestampSchema,
  updatedAt: timestampSchema,
});
export type JobView = z.infer<typeof jobSchema>;

export const jobWithTasksSchema = jobSchema.extend({ tasks: z.array(taskSchema) });
export type JobWithTasksView = z.infer<typeof jobWithTasksSchema>;

/** One task of a job, by its index (0-based) in the job's array. */
export const taskParamsSchema = z
  .object({
    id: z.uuid(),
    index: z.coerce.number().int().min(0).max(JOB_LIMITS.maxTasks - 1),
  })
  .strict();

/** `follow=true` keeps the answer open and streams new output until the task ends. */
export const taskLogsQuerySchema = z
  .object({
    follow: z.enum(['true', 'false', '1', '0']).optional(),
  })
  .strict();

/** How one task ended (or where it is), as `GET /jobs/:id/results` lists it. */
export const taskResultSchema = z.object({
  index: z.int(),
  taskId: z.uuid(),
  state: z.enum(TASK_STATES),
  attempts: z.int(),
  /** The guest's exit code; null while running, or when the guest gave none (it crashed). */
  exitCode: z.int().nullable(),
  /** What the guest reported as its result (its DESKPOOL-RESULT line); null when none yet. */
  result: z.string().nullable(),
  /** Why the run ended when the guest did not exit on its own (e.g. crashed, killed). */
  reason: z.string().nullable(),
  /** The task generation (placement) that reported the result. */
  resultGeneration: z.int().nullable(),
  reportedAt: timestampSchema.nullable(),
  finishedAt: timestampSchema.nullable(),
  /** Console output kept and dropped (size cap), in bytes. */
  logBytes: z.int(),
  logDroppedBytes: z.int(),
});
export type TaskResultView = z.infer<typeof taskResultSchema>;

export const jobResultsSchema = z.object({
  jobId: z.uuid(),
  state: z.enum(JOB_STATES),
  tasks: z.array(taskResultSchema),
});
export type JobResultsView = z.infer<typeof jobResultsSchema>;
