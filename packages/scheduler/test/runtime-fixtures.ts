// Shared set-up for the runtime's integration tests: a real database per file, a real Redis
// with a key prefix per file, and a small office (one pool, one PC, one person, one desktop).
import { randomBytes } from 'node:crypto';
import type { PrismaClient } from '@deskpool/db';
import { createTestDatabase, type TestDatabase } from '@deskpool/db/testing';
import { Redis } from 'ioredis';
import type { Clock } from '../src/runtime/engine.js';

export const REDIS_URL = process.env.DESKPOOL_TEST_REDIS_URL ?? 'redis://localhost:6379';

/** A clock the test moves by hand. */
export class ManualClock implements Clock {
  constructor(private t: number) {}
  now(): number {
    return this.t;
  }
  set(t: number): void {
    this.t = t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

/** Thursday 26 Nov 2026, 23:00 UTC: inside the default night window of a UTC pool. */
export const NIGHT = Date.parse('2026-11-26T23:00:00.000Z');
const MINUTE = 60_000;

export interface TestServices {
  db: TestDatabase;
  prisma: PrismaClient;
  redis: Redis;
  /** Unique per test file: queue prefix and command-channel prefix derive from it. */
  tag: string;
  queuePrefix: string;
  channelPrefix: string;
  close(): Promise<void>;
}

export async function startServices(): Promise<TestServices> {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null, lazyConnect: true });
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    redis.disconnect();
    throw new Error(`Cannot reach Redis at ${REDIS_URL}: ${(err as Error).message}. Start services with \`sudo bash scripts/services.sh\` or set DESKPOOL_TEST_REDIS_URL.`, { cause: err });
  }
  const db = await createTestDatabase();
  const tag = `dpt${randomBytes(4).toString('hex')}`;
  return {
    db,
    prisma: db.prisma,
    redis,
    tag,
    queuePrefix: `${tag}q`,
    channelPrefix: `${tag}:agent:`,
    async close() {
      // Only this file's keys: other test files and engineers share the Redis.
      for (const pattern of [`${tag}q:*`, `${tag}:*`]) {
        let cursor = '0';
        do {
          const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
          cursor = next;
          if (keys.length > 0) await redis.del(...keys);
        } while (cursor !== '0');
      }
      redis.disconnect();
      await db.drop();
    },
  };
}

export interface Office {
  poolId: string;
  userId: string;
  hostId: string;
  vmId: string;
  vmName: string;
}

let officeSeq = 0;

/**
 * A UTC pool with a 15-minute idle rule, one PC owned by one person whose desktop runs on it.
 * The PC has been idle since `idleSince` and last sent a heartbeat at `heartbeatAt`.
 */
export async function createOffice(prisma: PrismaClient, opts: { now: number; idleSince?: number; heartbeatAt?: number; presence?: 'idle' | 'present' }): Promise<Office> {
  officeSeq += 1;
  const n = `${officeSeq}-${randomBytes(3).toString('hex')}`;
  const pool = await prisma.pool.create({ data: { name: `pool-${n}`, timeZone: 'UTC', idleThresholdMinutes: 15, nightWindowStart: '19:00', nightWindowEnd: '07:00', storageMode: 'local' } });
  const user = await prisma.user.create({ data: { name: `user-${n}`, poolId: pool.id } });
  const host = await prisma.host.create({
    data: {
      name: `pc-${n}`,
      poolId: pool.id,
      ownerUserId: user.id,
      cores: 8,
      memoryMiB: 16384,
      diskGiB: 256,
      onlineState: 'online',
      presenceState: opts.presence ?? 'idle',
      presenceSince: new Date(opts.idleSince ?? opts.now - 40 * MINUTE),
      lastHeartbeatAt: new Date(opts.heartbeatAt ?? opts.now),
    },
  });
  await prisma.user.update({ where: { id: user.id }, data: { homeHostId: host.id } });
  const vmName = `dpt-vm-${n}`;
  const vm = await prisma.desktopVm.create({
    data: {
      name: vmName,
      ownerUserId: user.id,
      poolId: pool.id,
      vcpus: 2,
      memoryMiB: 4096,
      maxVcpus: 4,
      maxMemoryMiB: 8192,
      diskLocation: `/var/lib/deskpool/disks/${vmName}.qcow2`,
      state: 'RUNNING',
      currentHostId: host.id,
      fencingGeneration: 3,
    },
  });
  return { poolId: pool.id, userId: user.id, hostId: host.id, vmId: vm.id, vmName };
}

/** Collects command frames published on a host's channel, as the agent gateway would see them. */
export async function listenForCommands(services: TestServices, hostId: string): Promise<{ frames: unknown[]; stop(): void }> {
  const sub = services.redis.duplicate();
  const frames: unknown[] = [];
  sub.on('message', (_channel: string, message: string) => frames.push(JSON.parse(message)));
  await sub.subscribe(`${services.channelPrefix}${hostId}`);
  return { frames, stop: () => sub.disconnect() };
}

/** Waits until `check` passes (polling), for effects of asynchronous workers. */
export async function eventually<T>(check: () => Promise<T | undefined | false> | T | undefined | false, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
