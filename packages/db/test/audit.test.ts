import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordAudit } from '../src/index.js';
import { createTestDatabase, type TestDatabase } from '../src/testing.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db.drop();
});

describe('audit trail', () => {
  it('records a change together with the transaction that makes it', async () => {
    const pool = await db.prisma.$transaction(async (tx) => {
      const p = await tx.pool.create({ data: { name: 'office-a', timeZone: 'Europe/Berlin' } });
      await recordAudit(tx, { entityType: 'pool', entityId: p.id, action: 'create', actor: 'user:alice', cause: 'test', after: p });
      return p;
    });
    const events = await db.prisma.auditEvent.findMany({ where: { entityId: pool.id } });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ entityType: 'pool', action: 'create', actor: 'user:alice', cause: 'test' });
    expect((events[0]!.after as { name: string }).name).toBe('office-a');
    expect(typeof (events[0]!.after as { createdAt: unknown }).createdAt).toBe('string');
  });

  it('loses the audit record when the change rolls back', async () => {
    await expect(
      db.prisma.$transaction(async (tx) => {
        await recordAudit(tx, { entityType: 'pool', entityId: 'rolled-back', action: 'create', actor: 'scheduler', cause: 'test' });
        throw new Error('abort');
      }),
    ).rejects.toThrow('abort');
    expect(await db.prisma.auditEvent.count({ where: { entityId: 'rolled-back' } })).toBe(0);
  });

  it('refuses UPDATE, DELETE and TRUNCATE of audit events in SQL', async () => {
    await recordAudit(db.prisma, { entityType: 'host', entityId: 'h1', action: 'drain', actor: 'user:bob', cause: 'test', before: { n: 1n } });
    await expect(db.prisma.$executeRawUnsafe(`UPDATE audit_events SET actor = 'someone-else'`)).rejects.toThrow(/append-only/);
    await expect(db.prisma.$executeRawUnsafe(`DELETE FROM audit_events`)).rejects.toThrow(/append-only/);
    await expect(db.prisma.$executeRawUnsafe(`TRUNCATE audit_events`)).rejects.toThrow(/append-only/);
    const kept = await db.prisma.auditEvent.findFirst({ where: { entityId: 'h1' } });
    expect(kept).toMatchObject({ actor: 'user:bob', before: { n: '1' } });
  });
});
