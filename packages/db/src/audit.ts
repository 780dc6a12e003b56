import type { Prisma, PrismaClient } from './generated/prisma/client.js';

/** Who made a change: `user:<name>`, `token:<id>`, `scheduler`, `agent:<host>`, `system`. */
export type Actor = string;

export interface AuditInput {
  entityType: string;
  entityId: string;
  action: string;
  actor: Actor;
  /** The event or rule that caused the change (e.g. `api:PATCH /pools/:id`, `rule:idle-suspend`). */
  cause: string;
  before?: unknown;
  after?: unknown;
}

/** Anything that can write audit rows: the client itself or an interactive transaction. */
export type AuditWriter = Pick<PrismaClient, 'auditEvent'> | Prisma.TransactionClient;

/**
 * Appends one audit event. Call it with the transaction that makes the change, so the change
 * and its audit record commit or roll back together.
 */
export async function recordAudit(tx: AuditWriter, input: AuditInput): Promise<bigint> {
  const { id } = await tx.auditEvent.create({
    data: {
      entityType: input.entityType,
      entityId: input.entityId,
      action: input.action,
      actor: input.actor,
      cause: input.cause,
      before: toJsonValue(input.before),
      after: toJsonValue(input.after),
    },
    select: { id: true },
  });
  return id;
}

/** Plain JSON for a JSONB column: Dates become ISO strings, BigInts decimal strings. */
export function toJsonValue(value: unknown): Prisma.InputJsonValue | undefined {
  if (value === undefined || value === null) return undefined;
  return JSON.parse(JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))) as Prisma.InputJsonValue;
}
