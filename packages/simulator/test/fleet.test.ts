// A small office over an evening, night and morning on the real stack (PostgreSQL, Redis, API,
// scheduler runtime, agents over WebSockets, simulated hypervisors) at high acceleration.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_TEST_ADMIN_URL } from '@deskpool/db/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { doubleRuns, formatFleetReport, parseFleetOptions, runFleet, type FleetRun } from '../src/index.js';

describe('fleet run', () => {
  let run: FleetRun | undefined;
  let dir: string | undefined;
  afterAll(async () => {
    await run?.close();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it('plays an evening, night and morning and writes the report', async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dpfleet-test-'));
    const options = parseFleetOptions({
      days: 1,
      startHour: 18,
      hours: 17,
      pcs: 4,
      poolSize: 4,
      // Twice as slow as it can go on a quiet machine: under load a faster clock outruns the
      // stack and the night's placement ticks find no time (seen as no batch at all).
      speed: 600,
      seed: 3,
      setup: 'api',
      progressEveryMs: 0,
      reportDir: dir,
      databaseAdminUrl: process.env.DESKPOOL_TEST_DATABASE_URL ?? DEFAULT_TEST_ADMIN_URL,
      ...(process.env.REDIS_URL ? { redisUrl: process.env.REDIS_URL } : {}),
    });
    const lines: string[] = [];
    run = await runFleet(options, { print: (l) => lines.push(l) });
    const r = run.report;
    const text = `${lines.join('\n')}\n${formatFleetReport(r)}`;
    // The morning happened and everyone got their desktop, each on one PC at a time.
    expect(r.mornings.count, text).toBeGreaterThan(0);
    expect(r.mornings.missing, text).toBe(0);
    // Batch work was submitted and ran on the idle PCs at night.
    expect(r.batch.submitted, text).toBeGreaterThan(0);
    expect(r.batch.coreHoursRun, text).toBeGreaterThan(0);
    expect(r.harvest.availablePcHours, text).toBeGreaterThan(0);
    expect(r.controlPlane.events, text).toBeGreaterThan(0);
    expect(r.energy.alwaysOnKWh).toBeGreaterThan(r.energy.officeKWh);
    expect(run.files.map((f) => path.basename(f))).toEqual(['report.json', 'report.html']);
    const html = await fs.readFile(path.join(dir, 'report.html'), 'utf8');
    expect(html).toContain('<svg');
    const json = JSON.parse(await fs.readFile(path.join(dir, 'report.json'), 'utf8')) as { mornings: { count: number } };
    expect(json.mornings.count).toBe(r.mornings.count);
    // The hypervisors' own record: no desktop and no task ran on two PCs at the same moment.
    expect(doubleRuns(run.intervals), text).toEqual([]);
  }, 300_000);
});
