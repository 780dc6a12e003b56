// Request and answer bodies of the read-only dashboard endpoints (/api/v1/dashboard/*).
import { timestampSchema } from '@deskpool/protocol';
import { z } from 'zod';
import { PC_STATES } from './fleet.js';

export const pcStateSchema = z.enum(PC_STATES);

export const fleetQuerySchema = z.object({ poolId: z.uuid().optional() }).strict();

const countsSchema = z.record(z.string(), z.int());

export const pcTileSchema = z.object({
  id: z.uuid(),
  name: z.string(),
  poolId: z.uuid(),
  owner: z.string().nullable(),
  drained: z.boolean(),
  state: pcStateSchema,
  onlineState: z.string(),
  presence: z.string(),
  asleep: z.boolean(),
  batchTasks: z.int(),
  batchCores: z.number(),
  desktopsRunning: z.int(),
  desktopsMoving: z.int(),
  desktopsSuspended: z.int(),
  powerWatts: z.number(),
});

export const fleetSchema = z.object({
  at: z.string(),
  pcs: z.array(pcTileSchema),
  counts: countsSchema,
  powerWatts: z.number(),
  alwaysOnWatts: z.number(),
  /** What each state means, for the legend. */
  states: z.array(z.object({ state: pcStateSchema, meaning: z.string() })),
});

export const queueSchema = z.object({ jobs: countsSchema, tasks: countsSchema });

/** The longest timeline one request may ask for. */
export const MAX_TIMELINE_SPAN_MS = 31 * 24 * 3600_000;
/** Points in one answer at most; longer spans are thinned evenly. */
export const MAX_TIMELINE_POINTS = 1000;

export const timelineQuerySchema = z
  .object({ since: timestampSchema.optional(), until: timestampSchema.optional() })
  .strict()
  .refine((q) => q.since === undefined || q.until === undefined || Date.parse(q.since) < Date.parse(q.until), { path: ['until'], message: 'until must be after since' })
  .refine((q) => q.since === undefined || q.until === undefined || Date.parse(q.until) - Date.parse(q.since) <= MAX_TIMELINE_SPAN_MS, { path: ['since'], message: 'the span may be at most 31 days' });

export const timelineSampleSchema = z.object({
  at: z.string(),
  pcs: countsSchema,
  powerWatts: z.number(),
  alwaysOnWatts: z.number(),
  desktopsRunning: z.int(),
  tasksRunning: z.int(),
  tasksSucceeded: z.int(),
  /** Batch tasks finished per hour since the previous sample (null for the first). */
  tasksPerHour: z.number().nullable(),
});

export const timelineSchema = z.object({
  since: z.string(),
  until: z.string(),
  samples: z.array(timelineSampleSchema),
  /** Energy over the samples (power held until the next sample), and the same office always on. */
  energyKWh: z.number(),
  alwaysOnKWh: z.number(),
  powerModel: z.object({ pcOn: z.number(), desktop: z.number(), batchCore: z.number(), asleep: z.number() }),
});
