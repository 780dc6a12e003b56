// Where a tap's time goes in the scheduler: "present" events of PCs whose owner's desktop is
// suspended on them, handled one after another on the engine (real PostgreSQL and Redis), in
// P_POOLS pools of P_POOL_SIZE PCs. Prints the median handling time by phase and the time to read
// the focused snapshot against the whole pool's, interleaved so both see the same machine load.
// A profiling aid, not a catalogue figure: `npx tsx --conditions source bench/presence-profile.ts`
// (add `node --cpu-prof` for a CPU profile).
import { randomUUID } from 'node:crypto';
import { createTestDatabase } from '@deskpool/db/testing';
import { Redis } from 'ioredis';
import { SchedulerEngine } from '../src/runtime/engine.js';
import { loadFocusedSnapshot, loadSnapshot } from '../src/runtime/snapshot.js';

const POOLS = Number(process.env.P_POOLS ?? 5);
const POOL_SIZE = Number(process.env.P_POOL_SIZE ?? 200);
const N = Number(process.env.P_EVENTS ?? 100);
const db = await createTestDatabase();
const redis = new Redis('redis://localhost:6379');
try {
  const hostIds: string[] = [];
  for (let p = 0; p < POOLS; p++) {
    const pool = await db.prisma.pool.create({ data: { name: `prof-${p}`, timeZone: 'UTC', storageMode: 'local' } });
    const rows = Array.from({ length: POOL_SIZE }, (_, i) => ({ i: p * POOL_SIZE + i, hostId: randomUUID(), userId: randomUUID() }));
    await db.prisma.user.createMany({ data: rows.map((r) => ({ id: r.userId, name: `u-${r.i}`, poolId: pool.id })) });
    await db.prisma.host.createMany({ data: rows.map((r) => ({ id: r.hostId, name: `h-${r.i}`, poolId: pool.id, ownerUserId: r.userId, cores: 8, memoryMiB: 16384, diskGiB: 256, presenceState: 'idle' as const, presenceSince: new Date(Date.now() - 7200_000), onlineState: 'online' as const, lastHeartbeatAt: new Date() })) });
    await db.prisma.desktopVm.createMany({ data: rows.map((r) => ({ name: `dp-vm-${r.i}`, ownerUserId: r.userId, poolId: pool.id, vcpus: 2, memoryMiB: 4096, maxVcpus: 4, maxMemoryMiB: 8192, diskLocation: `/d/${r.i}.qcow2`, state: 'SUSPENDED' as const, savedStateHostId: r.hostId, savedStatePath: `/s/${r.i}.save`, fencingGeneration: 3 })) });
    hostIds.push(...rows.map((r) => r.hostId));
  }
  await db.prisma.$executeRaw`UPDATE users AS u SET home_host_id = h.id FROM hosts AS h WHERE h.owner_user_id = u.id`;
  let t0 = 0;
  const phase = { planned: [] as number[], committed: [] as number[], dispatched: [] as number[] };
  let tPlanned = 0;
  let tCommitted = 0;
  const engine = new SchedulerEngine({
    prisma: db.prisma,
    redis,
    channelPrefix: `dpprof${randomUUID()}:`,
    beforeCommit: () => void (tPlanned = performance.now()),
    afterCommit: () => void (tCommitted = performance.now()),
  });
  const times: number[] = [];
  for (let k = 0; k < N; k++) {
    const hostId = hostIds[(k * 7919) % hostIds.length]!;
    const t = performance.now();
    t0 = t;
    const out = await engine.handle({ type: 'presence', id: `p-${k}`, hostId, presence: 'present' });
    const end = performance.now();
    times.push(end - t);
    phase.planned.push(tPlanned - t0);
    phase.committed.push(tCommitted - tPlanned);
    phase.dispatched.push(end - tCommitted);
    if (k === 0) console.log(JSON.stringify(out));
  }
  const poolOf = new Map((await db.prisma.host.findMany({ select: { id: true, poolId: true } })).map((h) => [h.id, h.poolId]));
  const lf: number[] = [];
  const lw: number[] = [];
  for (let k = 0; k < 60; k++) {
    const hostId = hostIds[(k * 104729) % hostIds.length]!;
    const poolId = poolOf.get(hostId)!;
    let t = performance.now();
    await db.prisma.$transaction(async (tx) => loadFocusedSnapshot(tx, poolId, { hostId, userId: null }));
    lf.push(performance.now() - t);
    t = performance.now();
    await db.prisma.$transaction(async (tx) => loadSnapshot(tx, { poolIds: [poolId] }));
    lw.push(performance.now() - t);
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!.toFixed(1);
  console.log(`load in a transaction, interleaved: focused p50 ${med(lf.slice(10))} ms, whole pool p50 ${med(lw.slice(10))} ms`);
  console.log(`phases p50: scope+lock+load+plan ${med(phase.planned.slice(10))} ms, commit ${med(phase.committed.slice(10))} ms, dispatch ${med(phase.dispatched.slice(10))} ms`);
  const s = times.slice(10).sort((a, b) => a - b);
  console.log(`pools ${POOLS}x${POOL_SIZE}: presence handle p50 ${s[Math.floor(s.length / 2)]!.toFixed(1)} ms p90 ${s[Math.floor(s.length * 0.9)]!.toFixed(1)} ms`);
} finally {
  redis.disconnect();
  await db.drop();
}
