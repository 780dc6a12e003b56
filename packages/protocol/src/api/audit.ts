import { z } from 'zod';
import { pageQuerySchema, timestampSchema } from './common.js';

export const listAuditQuerySchema = pageQuerySchema
  .extend({
    entityType: z.string().min(1).max(64).optional(),
    entityId: z.string().min(1).max(128).optional(),
    actor: z.string().min(1).max(200).optional(),
    action: z.string().min(1).max(64).optional(),
    since: timestampSchema.optional(),
    until: timestampSchema.optional(),
  })
  .refine((q) => q.since === undefined || q.until === undefined || Date.parse(q.since) <= Date.parse(q.until), {
    path: ['until'],
    message: 'until must not be before since',
  });

export const auditEventSchema = z.object({
  /** Decimal string: the id is a 64-bit sequence. Newest first in listings. */
  id: z.string(),
  at: timestampSchema,
  entityType: z.string(),
  entityId: z.string(),
  action: z.string(),
  actor: z.string(),
  cause: z.string(),
  before: z.unknown(),
  after: z.unknown(),
});
export type AuditEventView = z.infer<typeof auditEventSchema>;
