// Each simulated PC's hypervisor: a SimulatedDriver plus what the office around it provides.
// - Shared storage: a desktop suspended on one PC can be restored on another (the pool uses
//   storageMode "shared"); save files live wherever they were written and are fetched on use.
// - The desktop images installed on the PCs and the standard batch image. A batch task's VM is
//   defined by the agent from its run-batch command (the standard guest with the task's command);
//   here the guest is the office's model instead: it runs until the office says its work is done
//   (batchGuestFinishes), then prints its result line and powers off, and the agent reports
//   task-finished as it would for a real guest.
// - A record of when each domain started and stopped running on which PC, for the summary.
import { InvalidState, type DomainSpecInput, type HypervisorDriver, type OpOptions, type SimClock, type SimulatedDriver } from '@deskpool/kvm-driver';

export interface RunInterval {
  domain: string;
  pc: number;
  from: number;
  /** null while still running. */
  until: number | null;
}

/** What every PC shares: the save files' home, the images, the record of runs. */
export class OfficeFabric {
  readonly drivers: SimulatedDriver[] = [];
  readonly intervals: RunInterval[] = [];
  private readonly open = new Map<string, RunInterval>();
  private readonly images = new Map<string, DomainSpecInput>();

  constructor(readonly clock: SimClock) {}

  addImage(spec: DomainSpecInput): void {
    this.images.set(spec.name, spec);
  }

  imageFor(name: string): DomainSpecInput | undefined {
    const known = this.images.get(name);
    if (known) return known;
    if (!name.startsWith('dp-task-')) return undefined;
    return batchImage(name);
  }

  markRunning(domain: string, pc: number): void {
    const key = `${pc}/${domain}`;
    if (this.open.has(key)) return;
    const interval: RunInterval = { domain, pc, from: this.clock.now(), until: null };
    this.open.set(key, interval);
    this.intervals.push(interval);
  }

  markStopped(domain: string, pc: number): void {
    const key = `${pc}/${domain}`;
    const interval = this.open.get(key);
    if (!interval) return;
    interval.until = this.clock.now();
    this.open.delete(key);
  }

  /** Ends this run if it is still the domain's open run on its PC (not a later one). */
  closeIfOpen(interval: RunInterval): void {
    const key = `${interval.pc}/${interval.domain}`;
    if (this.open.get(key) !== interval) return;
    interval.until = this.clock.now();
    this.open.delete(key);
  }

  /** The PC that holds a save file, if any. */
  holderOf(path: string): SimulatedDriver | undefined {
    return this.drivers.find((d) => d.hasFile(path));
  }
}

export const desktopStatePath = (domain: string): string => `/var/lib/deskpool/saved/${domain}.save`;

function batchImage(name: string): DomainSpecInput {
  return {
    name,
    domainType: 'qemu',
    vcpus: 2,
    maxVcpus: 2,
    memoryMiB: 2048,
    maxMemoryMiB: 2048,
    serialLogPath: `/var/log/deskpool/${name}.log`,
    boot: { kernel: '/var/lib/deskpool/images/batch-vmlinuz', cmdline: BATCH_GUEST_CMDLINE },
  };
}

/** The simulated batch guest prints its banner and then waits (no per-step console output). */
const BATCH_GUEST_CMDLINE = 'console=ttyS0 deskpool.mode=idle';

/**
 * The batch guest on PC `pc` has done its work: it prints its result and powers off, which its
 * agent reports as task-finished (exit code 0). False when the guest is not running there.
 */
export function batchGuestFinishes(fabric: OfficeFabric, pc: number, domain: string, result = 'done'): boolean {
  const driver = fabric.drivers[pc];
  if (!driver) throw new Error(`PC ${pc} has no hypervisor in this office`);
  try {
    driver.guestExit(domain, 0, result);
  } catch (err) {
    // Checkpointed or stopped a moment ago: its work ends wherever it runs next.
    if (err instanceof InvalidState) return false;
    throw err;
  }
  fabric.markStopped(domain, pc);
  return true;
}

export function desktopImage(name: string, vcpus: number, memoryMiB: number): DomainSpecInput {
  return {
    name,
    domainType: 'qemu',
    vcpus,
    maxVcpus: vcpus,
    memoryMiB,
    maxMemoryMiB: memoryMiB,
    serialLogPath: `/var/log/deskpool/${name}.log`,
    disks: [{ path: `/var/lib/deskpool/disks/${name}.qcow2`, target: 'vda' }],
  };
}

/**
 * The driver an agent on PC `pc` uses. Suspend to disk writes to shared storage; restore and
 * start fetch the save file or the image from wherever it is.
 */
export function officeHypervisor(fabric: OfficeFabric, pc: number, driver: SimulatedDriver): HypervisorDriver {
  fabric.drivers[pc] = driver;

  const ensureDefined = async (name: string, opts?: OpOptions): Promise<void> => {
    if ((await driver.state(name)) !== 'missing') return;
    const image = fabric.imageFor(name);
    if (image) await driver.define(image, opts);
  };

  const fetchFile = (path: string): boolean => {
    if (driver.hasFile(path)) return true;
    const holder = fabric.holderOf(path);
    if (!holder) return false;
    holder.copyFileTo(path, driver);
    holder.deleteFile(path);
    return true;
  };

  const { running, stopping } = fabricMarks(fabric, pc);

  /** Restore from shared storage (the desktop's or a checkpoint's save file), or boot the image. */
  const startOrRestore = async (name: string, opts?: OpOptions) => {
    const saved = name.startsWith('dp-task-') ? checkpointPath(name) : desktopStatePath(name);
    if (fetchFile(saved)) {
      const r = await driver.restoreFromFile(saved, opts);
      // Deleted once the restore from it is confirmed (invariant 2).
      driver.deleteFile(saved);
      return { changed: r.changed, state: r.state };
    }
    await ensureDefined(name, opts);
    return driver.start(name, opts);
  };

  const overrides: Partial<HypervisorDriver> = {
    // The agent defines a task's VM as the standard guest with the task's command; the office
    // runs its own model of that guest, with the size and console the agent asked for.
    define: (spec, opts) => driver.define(spec.name.startsWith('dp-task-') ? { ...spec, disks: [], boot: { kernel: '/var/lib/deskpool/images/batch-vmlinuz', cmdline: BATCH_GUEST_CMDLINE } } : spec, opts),
    start: (name, opts) => running(name, () => startOrRestore(name, opts)),
    restore: (name, opts) => running(name, () => startOrRestore(name, opts)),
    restoreFromFile: async (path, opts) => {
      fetchFile(path);
      const r = await driver.restoreFromFile(path, opts);
      fabric.markRunning(r.name, pc);
      return r;
    },
    managedSave: (name, opts) =>
      stopping(name, async () => {
        const r = await driver.saveToFile(name, desktopStatePath(name), opts);
        return { changed: r.changed, state: 'saved' as const };
      }),
    saveToFile: (name, path, opts) => stopping(name, () => driver.saveToFile(name, path, opts)),
    destroy: (name, opts) => stopping(name, () => driver.destroy(name, opts)),
    shutdown: (name, opts) => stopping(name, () => driver.shutdown(name, opts)),
  };

  return withOverrides(driver, overrides);
}

/** Wraps an operation so the fabric records where the guest runs (or that it stopped) once it succeeded. */
export function fabricMarks(fabric: OfficeFabric, pc: number) {
  return {
    running: async <T>(name: string, op: () => Promise<T>): Promise<T> => {
      const result = await op();
      fabric.markRunning(name, pc);
      return result;
    },
    stopping: async <T>(name: string, op: () => Promise<T>): Promise<T> => {
      const result = await op();
      fabric.markStopped(name, pc);
      return result;
    },
  };
}

/**
 * The driver with some operations replaced: the rest go to the driver itself (bound to it, so
 * a class's private fields keep working).
 */
export function withOverrides(driver: HypervisorDriver, overrides: Partial<HypervisorDriver>): HypervisorDriver {
  return new Proxy(driver, {
    get(target, prop, receiver) {
      const own = (overrides as Record<PropertyKey, unknown>)[prop];
      if (own !== undefined) return own;
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** The scheduler's convention for a task's checkpoint (packages/scheduler mapping.ts). */
export const checkpointPath = (domain: string): string => `/var/lib/deskpool/checkpoints/${domain.slice('dp-task-'.length)}.save`;
