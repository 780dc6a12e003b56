import { z } from 'zod';

export const API_ERROR_CODES = [
  'VALIDATION_FAILED',
  'BAD_REQUEST',
  'UNAUTHORIZED',
  'FORBIDDEN',
  'NOT_FOUND',
  'CONFLICT',
  'VERSION_CONFLICT',
  'IN_USE',
  'PAYLOAD_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE',
  'RATE_LIMITED',
  'SERVICE_UNAVAILABLE',
  'INTERNAL',
] as const;
export type ApiErrorCode = (typeof API_ERROR_CODES)[number];

export const validationIssueSchema = z.object({
  /** Where the field is: body, query or params. */
  location: z.string(),
  /** The field's path inside it, e.g. ["policy", "timeZone"]. */
  path: z.array(z.union([z.string(), z.number()])),
  message: z.string(),
});
export type ValidationIssue = z.infer<typeof validationIssueSchema>;

export const errorBodySchema = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    details: z.unknown().optional(),
  }),
});
export type ErrorBody = z.infer<typeof errorBodySchema>;

export const MAX_PAGE_LIMIT = 200;
export const DEFAULT_PAGE_LIMIT = 50;

export const pageQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(MAX_PAGE_LIMIT).default(DEFAULT_PAGE_LIMIT),
  cursor: z.string().min(1).max(512).optional(),
});

export function pageSchema<T extends z.ZodType>(item: T) {
  return z.object({ items: z.array(item), nextCursor: z.string().nullable() });
}

export const idParamsSchema = z.object({ id: z.uuid() }).strict();

/** Resource names: pools, hosts, users, VMs, tokens. Safe in URLs, shells and libvirt domain names. */
export const resourceNameSchema = z
  .string()
  .min(1)
  .max(63)
  .regex(/^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$/, 'names are letters, digits and . _ - (not at the ends)');

export const timestampSchema = z.iso.datetime({ offset: true });

export const versionSchema = z.int().min(1);

/** Query-string booleans: "true"/"false" only (z.coerce.boolean would read "false" as true). */
export const queryBooleanSchema = z.enum(['true', 'false']).transform((v) => v === 'true');
