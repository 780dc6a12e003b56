// The desktop promise on one PC, end to end with real parts: the evening's idle desktop is
// suspended to disk by the scheduler through the agent and libvirt; a key press written to the
// agent's FIFO brings it back running, and the guest carries on from where it was.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOffice, type CounterGuest, type Office, type OfficeHost } from '../src/index.js';

describe('a desktop through the night on real libvirt', { timeout: 180_000 }, () => {
  let office: Office;
  let pc: OfficeHost;
  let desk: CounterGuest & { vmId: string };

  beforeAll(async () => {
    office = await startOffice();
    office.startWorker();
    pc = await office.addHost({ name: 'pc-lifecycle' });
    desk = await office.addDesktop(pc);
  }, 300_000);

  afterAll(async () => {
    await office?.close();
  });

  it('suspends the desktop (managed save) once its owner has been idle past the threshold at night', async () => {
    // The agent reports the PC idle after a second without input; the pool's rule is a minute.
    await office.waitForVm(desk.vmId, 'nothing happens before the threshold', (vm) => vm.state === 'RUNNING');
    await expect.poll(async () => (await office.prisma.host.findUniqueOrThrow({ where: { id: pc.hostId } })).presenceState, { timeout: 20_000 }).toBe('idle');
    await office.timer('idleCheck');
    await new Promise((r) => setTimeout(r, 500));
    expect((await office.vm(desk.vmId)).state).toBe('RUNNING');

    office.clock.advance(2 * 60_000);
    await office.timer('idleCheck');
    const vm = await office.waitForVm(desk.vmId, 'the desktop is suspended', (v) => v.state === 'SUSPENDED');
    expect(vm.savedStateHostId).toBe(pc.hostId);
    expect(await pc.driver.state(desk.domain)).toBe('saved');
    const audit = await office.prisma.auditEvent.findMany({ where: { entityId: desk.vmId, action: { startsWith: 'vm.state.' } }, orderBy: { at: 'asc' } });
    expect(audit.map((a) => a.action)).toEqual(['vm.state.RUNNING->SUSPENDING', 'vm.state.SUSPENDING->SUSPENDED']);
    expect(audit[0]?.cause).toMatch(/rule:desktop\.idleSuspend/);
  });

  it('restores it at a key press on the FIFO, with the guest carrying on where it stopped', async () => {
    const countWhenSuspended = await desk.lastCount();
    await pc.tap();
    await office.waitForVm(desk.vmId, 'the desktop is running again', (v) => v.state === 'RUNNING' && v.currentHostId === pc.hostId);
    expect(await pc.driver.state(desk.domain)).toBe('running');
    expect(await desk.waitCountAbove(countWhenSuspended + 1)).toBeGreaterThan(countWhenSuspended + 1);
    expect(await desk.neverRebooted()).toBe(true);
    const ops = await office.prisma.operation.findMany({ where: { vmId: desk.vmId }, orderBy: { createdAt: 'asc' } });
    expect(ops.map((o) => [o.kind, o.status])).toEqual([
      ['suspend', 'succeeded'],
      ['restore', 'succeeded'],
      // The saved state goes only once the restore from it is confirmed (invariant 2).
      ['delete-state', 'succeeded'],
    ]);
  });
});
