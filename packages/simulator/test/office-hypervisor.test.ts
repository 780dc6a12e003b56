// The simulated office around each PC: shared storage for saved desktops and checkpoints,
// installed images, and the record of what ran where.
import { SimulatedDriver, VirtualClock } from '@deskpool/kvm-driver';
import { describe, expect, it } from 'vitest';
import { OfficeFabric, batchGuestFinishes, desktopImage, officeHypervisor } from '../src/index.js';

function office(pcs: number) {
  const clock = new VirtualClock();
  const fabric = new OfficeFabric(clock);
  const drivers = [...Array(pcs).keys()].map((pc) => officeHypervisor(fabric, pc, new SimulatedDriver({ hostname: `pc-${pc}`, clock })));
  return { clock, fabric, drivers };
}

describe('office hypervisor', () => {
  it('boots an installed desktop, suspends it to shared storage and restores it on another PC', async () => {
    const { fabric, drivers } = office(2);
    const [a, b] = drivers;
    if (!a || !b) throw new Error('two PCs expected');
    fabric.addImage(desktopImage('desk-ann', 2, 4096));
    await a.start('desk-ann');
    expect(await a.state('desk-ann')).toBe('running');
    await a.managedSave('desk-ann');
    expect(await a.state('desk-ann')).not.toBe('running');
    await b.restore('desk-ann');
    expect(await b.state('desk-ann')).toBe('running');
    // The save file was fetched and, once restored from, deleted everywhere.
    expect(fabric.holderOf('/var/lib/deskpool/saved/desk-ann.save')).toBeUndefined();
    const runs = fabric.intervals.filter((i) => i.domain === 'desk-ann');
    expect(runs.map((r) => [r.pc, r.until === null])).toEqual([
      [0, false],
      [1, true],
    ]);
    const [first, second] = runs;
    expect(first?.until).toBeLessThanOrEqual(second?.from ?? 0);
  });

  it('starts a batch task from the standard image and resumes it from its checkpoint on another PC', async () => {
    const { fabric, drivers } = office(2);
    const [a, b] = drivers;
    if (!a || !b) throw new Error('two PCs expected');
    const task = 'dp-task-2f0e5a8c-0000-4000-8000-000000000001';
    await a.start(task);
    await a.saveToFile(task, '/var/lib/deskpool/checkpoints/2f0e5a8c-0000-4000-8000-000000000001.save');
    await b.start(task);
    expect(await b.state(task)).toBe('running');
    expect(fabric.holderOf('/var/lib/deskpool/checkpoints/2f0e5a8c-0000-4000-8000-000000000001.save')).toBeUndefined();
    expect(fabric.intervals.filter((i) => i.domain === task).map((i) => i.pc)).toEqual([0, 1]);
  });

  it('refuses to start a domain that no image or save file describes', async () => {
    const { drivers } = office(1);
    await expect(drivers[0]?.start('desk-nobody')).rejects.toThrow();
  });
});

describe('office batch guests', () => {
  it('run the office model of the standard guest the agent defines, and power off with a result line when their work is done', async () => {
    const { fabric, drivers } = office(1);
    const [a] = drivers;
    if (!a) throw new Error('one PC expected');
    const task = 'dp-task-2f0e5a8c-0000-4000-8000-000000000002';
    const console = '/var/lib/deskpool-agent/consoles/task.log';
    // What the agent defines for a command job: the standard guest, its command on the cmdline.
    await a.define({ name: task, domainType: 'qemu', vcpus: 1, maxVcpus: 1, memoryMiB: 512, maxMemoryMiB: 512, serialLogPath: console, boot: { kernel: '/k', cmdline: 'deskpool.cmd=ZWNobyBoaQ== deskpool.poweroff=1' } });
    await a.start(task);
    expect(await a.state(task)).toBe('running');
    batchGuestFinishes(fabric, 0, task, 'frames 1-10');
    expect(await a.state(task)).toBe('shutoff');
    expect(fabric.drivers[0]?.serialLog(console)).toMatch(/^DESKPOOL-RESULT exit=0 frames 1-10$/m);
    expect(fabric.intervals.filter((i) => i.domain === task).every((i) => i.until !== null)).toBe(true);
  });
});
