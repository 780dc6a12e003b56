import { Prisma } from '@deskpool/db';

type Tx = Prisma.TransactionClient;

const LOCKABLE = {
  pools: Prisma.raw('"pools"'),
  hosts: Prisma.raw('"hosts"'),
  users: Prisma.raw('"users"'),
  desktop_vms: Prisma.raw('"desktop_vms"'),
  batch_jobs: Prisma.raw('"batch_jobs"'),
  enrollment_tokens: Prisma.raw('"enrollment_tokens"'),
  api_tokens: Prisma.raw('"api_tokens"'),
} as const;

/**
 * SELECT ... FOR UPDATE on one row, so a read-check-write in this transaction cannot
 * interleave with another writer's (the audit "before" is exactly what was replaced).
 * Returns false when the row does not exist.
 */
export async function lockRow(tx: Tx, table: keyof typeof LOCKABLE, id: string): Promise<boolean> {
  const rows = await tx.$queryRaw<{ id: string }[]>`SELECT id::text FROM ${LOCKABLE[table]} WHERE id = ${id}::uuid FOR UPDATE`;
  return rows.length > 0;
}
