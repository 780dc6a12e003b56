import { z } from 'zod';
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
