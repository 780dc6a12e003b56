// The whole demo office at high acceleration: real PostgreSQL and Redis, the real API on a
// local port, the scheduler runtime, agents over WebSockets, simulated hypervisors.
import { DEFAULT_TEST_ADMIN_URL } from '@deskpool/db/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { formatSummary, parseDemoOptions, runDemoOffice, type DemoRun } from '../src/index.js';

describe('demo office', () => {
  let run: DemoRun | undefined;
  afterAll(async () => {
    await run?.close();
  });

  it('gets everyone their desktop, never runs a desktop or a task in two places, loses no batch task', async () => {
    const lines: string[] = [];
    const options = parseDemoOptions({
      pcs: 8,
      speed: 1000,
      seed: 7,
      tasksPerPc: 3,
      taskHours: 2,
      progressEveryMs: 0,
      databaseAdminUrl: process.env.DESKPOOL_TEST_DATABASE_URL ?? DEFAULT_TEST_ADMIN_URL,
      ...(process.env.REDIS_URL ? { redisUrl: process.env.REDIS_URL } : {}),
    });
    run = await runDemoOffice(options, { print: (l) => lines.push(l) });
    const s = run.summary;
    const report = formatSummary(s, options.speed);
    // The summary names what failed; show it when an expectation does not hold.
    expect(s.invariants.filter((i) => !i.ok), report).toEqual([]);
    expect(s.invariants.map((i) => i.name)).toEqual(['every person got their desktop', 'no desktop on two hosts', 'no batch task lost or run twice']);
    // The night really happened: desktops were suspended, batch ran, people came back.
    expect(s.desktopsSuspendedOvernight, report).toBeGreaterThan(0);
    expect(s.batch.submitted).toBe(24);
    expect(s.batch.done, report).toBeGreaterThan(0);
    expect(s.mornings.filter((m) => m.hotDesk).length, report).toBeGreaterThan(0);
    expect(s.mornings.every((m) => m.waitMs !== null)).toBe(true);
    expect(report).toContain('all invariants hold');
  }, 240_000);
});
