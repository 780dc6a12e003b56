// Two scheduler workers racing on the same events never act twice: a burst of idle ticks and a
// burst of presence events (as from several API processes) are handled by both workers at once,
// yet the desktop is saved once and started once — counted in the operations table, in the
// agent's command journal and in libvirt's own lifecycle events.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SchedulerRuntime } from '@deskpool/scheduler';
import { startOffice, watchLifecycle, type CounterGuest, type LifecycleWatch, type Office, type OfficeHost } from '../src/index.js';

describe('two scheduler workers on the same events', { timeout: 180_000 }, () => {
  let office: Office;
  let pc: OfficeHost;
  let desk: CounterGuest & { vmId: string };
  let watch: LifecycleWatch;
  const handled = [0, 0];

  const journalBegins = async (kind: string): Promise<number> =>
    (await readFile(path.join(pc.stateDir, 'journal.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { t: string; kind?: string; domainName?: string })
      .filter((l) => l.t === 'begin' && l.kind === kind && l.domainName === desk.domain).length;
  const opsOf = async (kind: string) => office.prisma.operation.count({ where: { vmId: desk.vmId, kind } });
  const settled = () => expect.poll(async () => office.prisma.operation.count({ where: { vmId: desk.vmId, settledAt: null } }), { timeout: 60_000 }).toBe(0);

  beforeAll(async () => {
    office = await startOffice();
    const workers: SchedulerRuntime[] = [office.startWorker({ concurrency: 4 }), office.startWorker({ concurrency: 4 })];
    workers.forEach((w, i) => w.eventsWorker.on('completed', () => (handled[i] = (handled[i] ?? 0) + 1)));
    pc = await office.addHost({ name: 'pc-race' });
    desk = await office.addDesktop(pc, { tag: 'race' });
    watch = await watchLifecycle('qemu:///system', desk.domain);
  }, 600_000);

  afterAll(async () => {
    watch?.close();
    await office?.close();
  });

  it('suspends once for a burst of idle ticks handled by both workers', async () => {
    await expect.poll(async () => (await office.prisma.host.findUniqueOrThrow({ where: { id: pc.hostId } })).presenceState, { timeout: 20_000 }).toBe('idle');
    office.clock.advance(2 * 60_000);
    await Promise.all(Array.from({ length: 12 }, (_, slot) => office.events.publishTick({ timer: 'idleCheck', poolId: office.poolId, slot })));
    await office.waitForVm(desk.vmId, 'suspended', (v) => v.state === 'SUSPENDED');
    await settled();
    expect(await pc.driver.state(desk.domain)).toBe('saved');
    expect(await opsOf('suspend')).toBe(1);
    expect(await journalBegins('suspend')).toBe(1);
    expect(watch.lines.filter((l) => /Stopped Saved/.test(l))).toHaveLength(1);
    // Both workers took part.
    expect(handled[0]).toBeGreaterThan(0);
    expect(handled[1]).toBeGreaterThan(0);
  });

  it('restores once for a tap and a burst of presence events handled by both workers', async () => {
    const count = await desk.lastCount();
    const before = [...handled];
    const now = Date.now();
    await Promise.all([pc.tap(), ...Array.from({ length: 12 }, (_, i) => office.events.publishPresence({ hostId: pc.hostId, presence: 'present', at: now + i }))]);
    await office.waitForVm(desk.vmId, 'running', (v) => v.state === 'RUNNING');
    await settled();
    expect(await pc.driver.state(desk.domain)).toBe('running');
    expect(await opsOf('restore')).toBe(1);
    expect(await journalBegins('restore')).toBe(1);
    expect(watch.lines.filter((l) => /Started/.test(l))).toHaveLength(1);
    expect(await desk.waitCountAbove(count + 1)).toBeGreaterThan(count + 1);
    expect(await desk.neverRebooted()).toBe(true);
    expect((handled[0] ?? 0) - (before[0] ?? 0)).toBeGreaterThan(0);
    expect((handled[1] ?? 0) - (before[1] ?? 0)).toBeGreaterThan(0);
  });
});
