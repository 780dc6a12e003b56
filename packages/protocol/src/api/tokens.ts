import { z } from 'zod';
import { timestampSchema } from './common.js';
import { USER_ROLES } from './users.js';

export const createApiTokenSchema = z
  .object({
    name: z.string().min(1).max(100),
    role: z.enum(USER_ROLES),
    userId: z.uuid().optional(),
  })
  .strict()
  .superRefine((b, ctx) => {
    // user and submitter tokens act for a person: ownership of VMs and jobs hangs off the user.
    if (b.role !== 'admin' && b.userId === undefined) {
      ctx.addIssue({ code: 'custom', path: ['userId'], message: `a ${b.role} token needs a userId` });
    }
  });
export type CreateApiToken = z.infer<typeof createApiTokenSchema>;

export const apiTokenSchema = z.object({
  id: z.uuid(),
  name: z.string(),
  role: z.enum(USER_ROLES),
  userId: z.uuid().nullable(),
  createdAt: timestampSchema,
  lastUsedAt: timestampSchema.nullable(),
  revokedAt: timestampSchema.nullable(),
});
export type ApiTokenView = z.infer<typeof apiTokenSchema>;

/** Only the creation response carries the secret; it is never shown again. */
export const createdApiTokenSchema = apiTokenSchema.extend({ token: z.string() });

export const MIN_ENROLLMENT_TTL_SECONDS = 60;
export const MAX_ENROLLMENT_TTL_SECONDS = 30 * 24 * 3600;
export const DEFAULT_ENROLLMENT_TTL_SECONDS = 24 * 3600;

export const createEnrollmentTokenSchema = z
  .object({
    poolId: z.uuid(),
    ttlSeconds: z.int().min(MIN_ENROLLMENT_TTL_SECONDS).max(MAX_ENROLLMENT_TTL_SECONDS).default(DEFAULT_ENROLLMENT_TTL_SECONDS),
    note: z.string().max(500).optional(),
  })
  .strict();
export type CreateEnrollmentToken = z.infer<typeof createEnrollmentTokenSchema>;

export const enrollmentTokenSchema = z.object({
  id: z.uuid(),
  poolId: z.uuid(),
  note: z.string(),
  createdBy: z.string(),
  createdAt: timestampSchema,
  expiresAt: timestampSchema,
  usedAt: timestampSchema.nullable(),
  usedByHostId: z.uuid().nullable(),
  revokedAt: timestampSchema.nullable(),
});
export type EnrollmentTokenView = z.infer<typeof enrollmentTokenSchema>;

export const createdEnrollmentTokenSchema = enrollmentTokenSchema.extend({ token: z.string() });
