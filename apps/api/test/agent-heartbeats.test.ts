import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@deskpool/db/testing';
import { HeartbeatWriter } from '../src/agent/heartbeats.js';

describe('heartbeat writer (real PostgreSQL)', () => {
  let db: TestDatabase;
  let poolId: string;
  beforeAll(async () => {
    db = await createTestDatabase();
    poolId = (await db.prisma.pool.create({ data: { name: 'hb', timeZone: 'UTC' } })).id;
  });
  afterAll(async () => db?.drop());

  async function host(revoked = false) {
    const h = await db.prisma.host.create({ data: { name: `h-${randomUUID().slice(0, 8)}`, poolId } });
    const c = await db.prisma.hostCredential.create({ data: { hostId: h.id, secretHash: randomUUID(), revokedAt: revoked ? new Date() : null } });
    return { hostId: h.id, credentialId: c.id };
  }

  it('records a batch of heartbeats in one go and refuses those whose credential is revoked', async () => {
    const now = new Date('2026-11-26T10:00:00Z');
    const writer = new HeartbeatWriter(db.prisma, { now: () => now }, 20, 50);
    const good = await Promise.all(Array.from({ length: 120 }, () => host()));
    const bad = await host(true);
    const results = await Promise.all([...good, bad].map((h) => writer.record(h.hostId, h.credentialId)));
    expect(results.slice(0, 120).every(Boolean)).toBe(true);
    expect(results[120]).toBe(false);
    const rows = await db.prisma.host.findMany({ where: { id: { in: good.map((g) => g.hostId) } } });
    expect(rows.every((r) => r.onlineState === 'online' && r.lastHeartbeatAt?.getTime() === now.getTime())).toBe(true);
    expect((await db.prisma.host.findUniqueOrThrow({ where: { id: bad.hostId } })).lastHeartbeatAt).toBeNull();
    // A removed host: its heartbeat is refused too.
    const gone = await host();
    await db.prisma.host.delete({ where: { id: gone.hostId } });
    expect(await writer.record(gone.hostId, gone.credentialId)).toBe(false);
    await writer.close();
  });
});
