import { z } from 'zod';
import { pageQuerySchema, timestampSchema, versionSchema } from './common.js';

export const HOST_ONLINE_STATES = ['online', 'offline'] as const;
export const HOST_PRESENCE_STATES = ['present', 'idle', 'unknown'] as const;

const hostLabelSchema = z
  .string()
  .min(1)
  .max(63)
  .regex(/^[A-Za-z0-9]([A-Za-z0-9._=-]*[A-Za-z0-9])?$/, 'labels are letters, digits and . _ = - (not at the ends)');

export const listHostsQuerySchema = pageQuerySchema.extend({
  poolId: z.uuid().optional(),
  state: z.enum(HOST_ONLINE_STATES).optional(),
});

export const updateHostSchema = z
  .object({
    poolId: z.uuid().optional(),
    ownerUserId: z.uuid().nullable().optional(),
    labels: z
      .array(hostLabelSchema)
      .max(64)
      .refine((l) => new Set(l).size === l.length, 'labels must not repeat')
      .optional(),
    version: versionSchema.optional(),
  })
  .strict()
  .refine((b) => Object.keys(b).some((k) => k !== 'version'), { message: 'nothing to update: give at least one field' });
export type UpdateHost = z.infer<typeof updateHostSchema>;

export const hostSchema = z.object({
  id: z.uuid(),
  name: z.string(),
  poolId: z.uuid(),
  ownerUserId: z.uuid().nullable(),
  mac: z.string().nullable(),
  cores: z.int(),
  memoryMiB: z.int(),
  diskGiB: z.int(),
  gpu: z.string().nullable(),
  labels: z.array(z.string()),
  inventory: z.unknown(),
  agentVersion: z.string().nullable(),
  state: z.enum(HOST_ONLINE_STATES),
  presence: z.enum(HOST_PRESENCE_STATES),
  presenceSince: timestampSchema.nullable(),
  drained: z.boolean(),
  lastHeartbeatAt: timestampSchema.nullable(),
  fencingEpoch: z.int(),
  /** Went silent; must be reconciled before it may start anything. */
  needsReconcile: z.boolean(),
  /** Put to sleep by power management. */
  asleep: z.boolean(),
  version: z.int(),
  createdAt: timestampSchema,
  updatedAt: timestampSchema,
});
export type HostView = z.infer<typeof hostSchema>;
