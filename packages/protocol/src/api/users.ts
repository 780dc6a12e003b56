import { z } from 'zod';
import { resourceNameSchema, timestampSchema, versionSchema } from './common.js';

export const USER_ROLES = ['admin', 'user', 'submitter'] as const;
export type UserRoleName = (typeof USER_ROLES)[number];

export const createUserSchema = z
  .object({
    name: resourceNameSchema,
    displayName: z.string().max(200).optional(),
    role: z.enum(USER_ROLES).default('user'),
    poolId: z.uuid().nullable().optional(),
    homeHostId: z.uuid().nullable().optional(),
  })
  .strict();
export type CreateUser = z.infer<typeof createUserSchema>;

export const updateUserSchema = z
  .object({
    displayName: z.string().max(200).optional(),
    role: z.enum(USER_ROLES).optional(),
    poolId: z.uuid().nullable().optional(),
    homeHostId: z.uuid().nullable().optional(),
    version: versionSchema.optional(),
  })
  .strict()
  .refine((b) => Object.keys(b).some((k) => k !== 'version'), { message: 'nothing to update: give at least one field' });
export type UpdateUser = z.infer<typeof updateUserSchema>;

export const userSchema = z.object({
  id: z.uuid(),
  name: z.string(),
  displayName: z.string(),
  role: z.enum(USER_ROLES),
  poolId: z.uuid().nullable(),
  homeHostId: z.uuid().nullable(),
  version: z.int(),
  createdAt: timestampSchema,
  updatedAt: timestampSchema,
});
export type UserView = z.infer<typeof userSchema>;

export const meSchema = z.object({
  tokenId: z.uuid(),
  tokenName: z.string(),
  role: z.enum(USER_ROLES),
  /** How this caller appears in the audit trail. */
  actor: z.string(),
  user: userSchema.nullable(),
});
export type MeView = z.infer<typeof meSchema>;
