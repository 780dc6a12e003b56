// Each real PC's hypervisor in `demo --real`: a LibvirtDriver (the machine's libvirtd or a
// namespaced test host) plus the office's shared storage and the record of runs.
// - Shared storage is real here: every libvirtd of the demo sees this machine's filesystem, so a
//   desktop suspended to /var/lib/deskpool/saved/<domain>.save on one PC can be restored on any
//   other (the pool uses storageMode "shared", as in the simulated office). libvirt's own managed
//   save lives in each daemon's private directory and could not be restored elsewhere.
// - The record (OfficeFabric) of when each domain ran on which PC, which the summary's
//   invariants read. A batch guest that powers off by itself is recorded by `noteGuestExits`.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { HypervisorDriver, LibvirtDriver, OpOptions } from '@deskpool/kvm-driver';
import { desktopStatePath, fabricMarks, withOverrides, type OfficeFabric } from './office-hypervisor.js';

const isTask = (name: string): boolean => name.startsWith('dp-task-');

async function fileHere(file: string): Promise<boolean> {
  return fs.stat(file).then((s) => s.isFile() && s.size > 0, () => false);
}

export function realOfficeHypervisor(fabric: OfficeFabric, pc: number, driver: LibvirtDriver): HypervisorDriver {
  const { running, stopping } = fabricMarks(fabric, pc);

  /** A desktop's state on shared storage comes back here (defined here from then on); the file goes once it ran. */
  const restoreShared = async (name: string, opts?: OpOptions) => {
    const saved = desktopStatePath(name);
    if (isTask(name) || !(await fileHere(saved))) return null;
    const restored = await driver.restoreFromFile(saved, opts);
    await driver.persist(name, opts);
    await fs.rm(saved, { force: true });
    return { changed: restored.changed, state: restored.state };
  };

  const overrides: Partial<HypervisorDriver> = {
    start: (name, opts) => running(name, async () => (await restoreShared(name, opts)) ?? driver.start(name, opts)),
    restore: (name, opts) => running(name, async () => (await restoreShared(name, opts)) ?? driver.restore(name, opts)),
    restoreFromFile: async (file, opts) => {
      const r = await driver.restoreFromFile(file, opts);
      fabric.markRunning(r.name, pc);
      return r;
    },
    managedSave: (name, opts) =>
      stopping(name, async () => {
        if (isTask(name)) return driver.managedSave(name, opts);
        const file = desktopStatePath(name);
        await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
        const r = await driver.saveToFile(name, file, opts);
        return { changed: r.changed, state: 'saved' as const };
      }),
    saveToFile: (name, file, opts) => stopping(name, () => driver.saveToFile(name, file, opts)),
    destroy: (name, opts) => stopping(name, () => driver.destroy(name, opts)),
    shutdown: (name, opts) => stopping(name, () => driver.shutdown(name, opts)),
  };

  return withOverrides(driver, overrides);
}

/**
 * Closes the record of batch guests that are no longer running on their PC: a count-to guest
 * prints its result and powers off by itself, not through a driver call.
 */
export async function noteGuestExits(fabric: OfficeFabric, drivers: readonly LibvirtDriver[]): Promise<void> {
  const open = fabric.intervals.filter((i) => i.until === null && isTask(i.domain));
  await Promise.all(
    open.map(async (i) => {
      const driver = drivers[i.pc];
      if (!driver) return;
      const state = await driver.state(i.domain).catch(() => null);
      if (state !== null && state !== 'running' && state !== 'paused') fabric.closeIfOpen(i);
    }),
  );
}
