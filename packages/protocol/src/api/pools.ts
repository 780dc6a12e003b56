import { z } from 'zod';
import { resourceNameSchema, timestampSchema, versionSchema } from './common.js';

export const STORAGE_MODES = ['shared', 'local'] as const;

const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'times are HH:MM (24 h)');

export function isValidTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

export const timeZoneSchema = z.string().min(1).max(64).refine(isValidTimeZone, 'not a known IANA time zone (e.g. Europe/Berlin, UTC)');

/** The policy fields a pool carries; all optional on create (defaults below) and on update. */
export const poolPolicyShape = {
  timeZone: timeZoneSchema,
  officeDays: z
    .array(z.int().min(1).max(7))
    .min(1)
    .max(7)
    .refine((d) => new Set(d).size === d.length, 'office days must not repeat'),
  officeHoursStart: hhmm,
  officeHoursEnd: hhmm,
  idleThresholdMinutes: z.int().min(1).max(24 * 60),
  nightWindowStart: hhmm,
  nightWindowEnd: hhmm,
  batchAllowed: z.boolean(),
  maxBatchPercentOwnerPresent: z.int().min(0).max(100),
  preStaging: z.boolean(),
  powerManagement: z.boolean(),
  storageMode: z.enum(STORAGE_MODES),
  checkpointGraceSeconds: z.int().min(0).max(3600),
};

export const POOL_DEFAULTS = {
  timeZone: 'UTC',
  officeDays: [1, 2, 3, 4, 5],
  officeHoursStart: '08:00',
  officeHoursEnd: '18:00',
  idleThresholdMinutes: 15,
  nightWindowStart: '19:00',
  nightWindowEnd: '07:00',
  batchAllowed: true,
  maxBatchPercentOwnerPresent: 25,
  preStaging: true,
  powerManagement: true,
  storageMode: 'local',
  checkpointGraceSeconds: 60,
} as const;

export const createPoolSchema = z
  .object({ name: resourceNameSchema, description: z.string().max(1000).optional() })
  .extend(z.object(poolPolicyShape).partial().shape)
  .strict();
export type CreatePool = z.infer<typeof createPoolSchema>;

export const updatePoolSchema = createPoolSchema
  .partial()
  .extend({ version: versionSchema.optional() })
  .strict()
  .refine((b) => Object.keys(b).some((k) => k !== 'version'), { message: 'nothing to update: give at least one field' });
export type UpdatePool = z.infer<typeof updatePoolSchema>;

export const poolSchema = z.object({
  id: z.uuid(),
  name: z.string(),
  description: z.string(),
  timeZone: z.string(),
  officeDays: z.array(z.int()),
  officeHoursStart: z.string(),
  officeHoursEnd: z.string(),
  idleThresholdMinutes: z.int(),
  nightWindowStart: z.string(),
  nightWindowEnd: z.string(),
  batchAllowed: z.boolean(),
  maxBatchPercentOwnerPresent: z.int(),
  preStaging: z.boolean(),
  powerManagement: z.boolean(),
  storageMode: z.enum(STORAGE_MODES),
  checkpointGraceSeconds: z.int(),
  version: z.int(),
  createdAt: timestampSchema,
  updatedAt: timestampSchema,
});
export type PoolView = z.infer<typeof poolSchema>;
