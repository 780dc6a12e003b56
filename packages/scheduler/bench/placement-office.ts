// The office both end-to-end placement benches start from: one pool of idle, online PCs and
// one queued job of identical tasks, written straight to PostgreSQL.
import type { PrismaClient } from '@deskpool/db';

export interface PlacementOffice {
  poolId: string;
  jobId: string;
}

export async function seedPlacementOffice(prisma: PrismaClient, o: { hosts: number; tasks: number; now: number }): Promise<PlacementOffice> {
  const pool = await prisma.pool.create({ data: { name: 'bench', timeZone: 'UTC' } });
  await prisma.host.createMany({
    data: Array.from({ length: o.hosts }, (_, i) => ({
      name: `bench-pc-${i}`,
      poolId: pool.id,
      cores: 8,
      memoryMiB: 32768,
      diskGiB: 500,
      onlineState: 'online' as const,
      presenceState: 'idle' as const,
      presenceSince: new Date(o.now - 3600_000),
      lastHeartbeatAt: new Date(o.now),
    })),
  });
  const job = await prisma.batchJob.create({
    data: { name: 'bench', submittedBy: 'user:bench', poolId: pool.id, spec: { name: 'bench', command: ['true'], cores: 1, memoryMiB: 1024, taskCount: o.tasks }, taskCount: o.tasks },
  });
  // In slices: one createMany of 100k rows exceeds PostgreSQL's bind-parameter limit.
  for (let i = 0; i < o.tasks; i += 5000) {
    await prisma.batchTask.createMany({ data: Array.from({ length: Math.min(5000, o.tasks - i) }, (_, k) => ({ jobId: job.id, index: i + k })) });
  }
  return { poolId: pool.id, jobId: job.id };
}
