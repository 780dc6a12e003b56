// The desktop promise on one PC each, end to end with real parts (API, scheduler worker, Redis,
// PostgreSQL, agents, libvirt and the tiny counter guest):
// - the evening's idle desktop is suspended to disk (managed save) on its PC, a pinned one is not;
// - a key press written to the agent's FIFO brings it back running, the guest carrying on;
// - from the owner's arrival history the scheduler restores a desktop before its owner
//   arrives, so the tap finds it running.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOffice, type CounterGuest, type Office, type OfficeHost } from '../src/index.js';

type Desk = CounterGuest & { vmId: string };
const WEEK = 7 * 24 * 3600_000;

describe('desktops through the night on real libvirt', { timeout: 180_000 }, () => {
  let office: Office;
  let pc: OfficeHost;
  let pinnedPc: OfficeHost;
  let stagedPc: OfficeHost;
  let desk: Desk;
  let pinnedDesk: Desk;
  let stagedDesk: Desk;
  const hostRow = (h: OfficeHost) => office.prisma.host.findUniqueOrThrow({ where: { id: h.hostId } });
  const opsOf = (vmId: string) => office.prisma.operation.findMany({ where: { vmId }, orderBy: { createdAt: 'asc' } });

  beforeAll(async () => {
    office = await startOffice({ pool: { preStaging: true } });
    office.startWorker();
    [pc, pinnedPc, stagedPc] = await Promise.all([office.addHost({ name: 'pc-a' }), office.addHost({ name: 'pc-pinned' }), office.addHost({ name: 'pc-staged' })]);
    [desk, pinnedDesk, stagedDesk] = await Promise.all([office.addDesktop(pc, { tag: 'a' }), office.addDesktop(pinnedPc, { tag: 'pinned' }), office.addDesktop(stagedPc, { tag: 'staged' })]);
    await office.api('POST', `/vms/${pinnedDesk.vmId}/pin`, {});
  }, 600_000);

  afterAll(async () => {
    await office?.close();
  });

  it('suspends idle desktops (managed save) past the threshold at night, and leaves the pinned one running', async () => {
    // Each agent reports its PC idle a second after the last input; the pool's rule is a minute.
    // Fresh input first: booting the guests may itself have taken longer than the rule.
    const tappedAt = office.clock.now();
    await Promise.all([pc, pinnedPc, stagedPc].map((h) => h.tap()));
    for (const h of [pc, pinnedPc, stagedPc]) {
      const idleSinceTap = async (): Promise<boolean> => {
        const row = await hostRow(h);
        return row.presenceState === 'idle' && (row.presenceSince?.getTime() ?? 0) >= tappedAt - 1000;
      };
      await expect.poll(idleSinceTap, { timeout: 30_000 }).toBe(true);
    }
    await office.timer('idleCheck');
    await new Promise((r) => setTimeout(r, 1000));
    expect((await office.vm(desk.vmId)).state).toBe('RUNNING');

    office.clock.advance(2 * 60_000);
    await office.timer('idleCheck');
    const vm = await office.waitForVm(desk.vmId, 'the desktop is suspended', (v) => v.state === 'SUSPENDED');
    await office.waitForVm(stagedDesk.vmId, 'the other desktop is suspended', (v) => v.state === 'SUSPENDED');
    expect(vm.savedStateHostId).toBe(pc.hostId);
    expect(await pc.driver.state(desk.domain)).toBe('saved');
    const audit = await office.prisma.auditEvent.findMany({ where: { entityId: desk.vmId, action: { startsWith: 'vm.state.' } }, orderBy: { at: 'asc' } });
    expect(audit.map((a) => a.action)).toEqual(['vm.state.RUNNING->SUSPENDING', 'vm.state.SUSPENDING->SUSPENDED']);
    expect(audit[0]?.cause).toMatch(/rule:desktop\.idleSuspend/);

    // Pinned: the same tick left it alone, and it still counts.
    expect((await office.vm(pinnedDesk.vmId)).state).toBe('RUNNING');
    expect(await opsOf(pinnedDesk.vmId)).toEqual([]);
    expect(await pinnedPc.driver.state(pinnedDesk.domain)).toBe('running');
    const count = await pinnedDesk.lastCount();
    expect(await pinnedDesk.waitCountAbove(count)).toBeGreaterThan(count);
  });

  it('restores the desktop at a key press on the FIFO, the guest carrying on where it stopped', async () => {
    const countWhenSuspended = await desk.lastCount();
    await pc.tap();
    await office.waitForVm(desk.vmId, 'the desktop is running again', (v) => v.state === 'RUNNING' && v.currentHostId === pc.hostId);
    expect(await pc.driver.state(desk.domain)).toBe('running');
    expect(await desk.waitCountAbove(countWhenSuspended + 1)).toBeGreaterThan(countWhenSuspended + 1);
    expect(await desk.neverRebooted()).toBe(true);
    await expect
      .poll(async () => (await opsOf(desk.vmId)).map((o) => [o.kind, o.status]), { timeout: 30_000 })
      .toEqual([
        ['suspend', 'succeeded'],
        ['restore', 'succeeded'],
        // The saved state goes only once the restore from it is confirmed (invariant 2).
        ['delete-state', 'succeeded'],
      ]);
  });

  it('pre-stages a desktop from its owner arrival history, so the tap finds it running', async () => {
    // The owner came in at this time of day, five minutes from now, on the same weekday of the
    // last three weeks.
    const usual = office.clock.now() + 5 * 60_000;
    await office.prisma.user.update({ where: { id: stagedPc.owner.id }, data: { arrivals: [1, 2, 3].map((w) => new Date(usual - w * WEEK)) } });
    const countWhenSuspended = await stagedDesk.lastCount();
    await office.timer('preStage');
    await office.waitForVm(stagedDesk.vmId, 'the desktop is pre-staged', (v) => v.state === 'RUNNING' && v.currentHostId === stagedPc.hostId);
    expect(await stagedPc.driver.state(stagedDesk.domain)).toBe('running');
    const restoresBeforeTap = (await opsOf(stagedDesk.vmId)).filter((o) => o.kind === 'restore');
    expect(restoresBeforeTap).toHaveLength(1);
    const staging = await office.prisma.auditEvent.findFirstOrThrow({ where: { entityId: stagedDesk.vmId, action: 'vm.state.SUSPENDED->RESTORING' } });
    expect(staging.cause).toMatch(/rule:prestage\.beforeArrival/);

    // The owner arrives: the desktop is already there, nothing more is restored.
    const arrivals = () => office.prisma.auditEvent.findMany({ where: { action: 'prestage.arrival', entityId: stagedPc.owner.id }, orderBy: { id: 'asc' } });
    const reportedBefore = (await arrivals()).length;
    office.clock.advance(5 * 60_000);
    await stagedPc.tap();
    await expect.poll(async () => (await arrivals()).length, { timeout: 30_000 }).toBe(reportedBefore + 1);
    expect((await arrivals()).at(-1)?.after).toMatchObject({ desktopWasRunning: true });
    expect((await office.vm(stagedDesk.vmId)).state).toBe('RUNNING');
    expect((await opsOf(stagedDesk.vmId)).filter((o) => o.kind === 'restore')).toHaveLength(1);
    expect(await stagedDesk.waitCountAbove(countWhenSuspended + 1)).toBeGreaterThan(countWhenSuspended + 1);
    expect(await stagedDesk.neverRebooted()).toBe(true);
  });
});
