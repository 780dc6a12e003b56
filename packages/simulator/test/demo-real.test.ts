// `demo --real` end to end: the demo office's night and morning on three real libvirt daemons
// (this machine's and two namespaced test hosts) with the tiny test guest, against real
// PostgreSQL and Redis. Needs root, libvirtd and the guest image (guest/build.sh); it fails with
// the demo's own message when they are missing.
import { DEFAULT_TEST_ADMIN_URL } from '@deskpool/db/testing';
import { createPrisma } from '@deskpool/db';
import { afterAll, describe, expect, it } from 'vitest';
import { formatSummary, parseDemoOptions, runDemoOffice, type DemoRun } from '../src/index.js';

describe('demo --real', () => {
  let run: Promise<DemoRun> | undefined;
  const stop = new AbortController();
  const lines: string[] = [];
  afterAll(async () => {
    // A run cut short (test timeout) still removes its guests, test hosts and database, and
    // shows how far the night got.
    stop.abort();
    const finished = await run?.catch((err: unknown) => {
      console.log(`demo --real did not finish (${(err as Error).message}); its progress:\n${lines.join('\n')}`);
      return undefined;
    });
    await finished?.close();
  }, 180_000);

  it('suspends real desktops overnight, runs and checkpoints real batch guests, and brings every desktop back with its guest state', async () => {
    const options = parseDemoOptions({
      real: true,
      speed: 800,
      seed: 1,
      progressEveryMs: 5000,
      databaseAdminUrl: process.env.DESKPOOL_TEST_DATABASE_URL ?? DEFAULT_TEST_ADMIN_URL,
      ...(process.env.REDIS_URL ? { redisUrl: process.env.REDIS_URL } : {}),
    });
    expect(options.pcs).toBe(3);
    run = runDemoOffice(options, { print: (l) => lines.push(l), signal: stop.signal });
    const { summary: s, databaseUrl } = await run;
    const report = `${lines.join('\n')}\n${formatSummary(s, options.speed)}`;
    // The summary names what failed; show it when an expectation does not hold.
    expect(s.invariants.filter((i) => !i.ok), report).toEqual([]);
    expect(s.invariants.map((i) => i.name)).toEqual([
      'every person got their desktop',
      'no desktop on two hosts',
      'no batch task lost or run twice',
      'guest counters continued',
      'batch tasks counted on after checkpoints',
    ]);
    // The night really happened on the real guests: the desktops were saved to shared storage
    // and restored, the night's count-to tasks finished, and one person sat at another PC.
    expect(s.desktopsSuspendedOvernight, report).toBeGreaterThanOrEqual(2);
    expect(s.batch.done, report).toBeGreaterThan(0);
    expect(s.mornings.filter((m) => m.hotDesk).length, report).toBe(1);
    expect(s.mornings.every((m) => m.waitMs !== null), report).toBe(true);
    expect(lines[0], report).toMatch(/dashboard http:\/\/127\.0\.0\.1:\d+\/dashboard/);

    // Batch yielded to the morning: the long task was checkpointed by its agent.
    const prisma = createPrisma(databaseUrl);
    try {
      const checkpoints = await prisma.operation.count({ where: { kind: 'checkpoint-batch', status: 'succeeded' } });
      expect(checkpoints, report).toBeGreaterThan(0);
    } finally {
      await prisma.$disconnect();
    }
  }, 420_000);
});
