// `demo --real`: the demo office on three real PCs' worth of libvirt. PC 1 is this machine's
// libvirtd (qemu:///system), PCs 2 and 3 are namespaced test hosts (scripts/testhost.sh) with
// libvirtds of their own. Desktops are the tiny test guest in counter mode (COUNT n once a second
// on the serial console, so a desktop that comes back counting on kept its state); batch tasks
// are the standard guest counting to N (`dp-count-to`), checkpointed to shared storage and
// resumed from there. Guests run under QEMU emulation here, KVM where the host has it (the driver
// tells them apart).
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { CounterGuest, testHostUp, type TestHost } from '@deskpool/e2e';
import { LibvirtDriver, createLibvirtDriver, ensureGuestImage } from '@deskpool/kvm-driver';
import type { HostInventory } from '@deskpool/protocol';
import { RealOfficeUnavailable } from './errors.js';
import type { DemoJob, HardwareContext, OfficeHardware } from './hardware.js';
import { desktopStatePath } from './office-hypervisor.js';
import { noteGuestExits, realOfficeHypervisor } from './real-hypervisor.js';
import type { Person } from './scenario.js';
import type { InvariantCheck } from './summary.js';

const execFileP = promisify(execFile);
const MIN = 60_000;
const LOCAL_URI = 'qemu:///system';
/** The two namespaced PCs (scripts/testhost.sh NAME ADDR). */
export const REAL_TEST_HOSTS = [
  { name: 'dpdemo1', addr: '10.77.120.2' },
  { name: 'dpdemo2', addr: '10.77.121.2' },
] as const;
/** A count-to guest prints one step every 0.2 s of real time. */
const STEP_MS = 200;
const BATCH_TASK = { cores: 1, memoryMiB: 128 } as const;
/** Steps of the task that outlasts the night (it yields to the morning and is checkpointed). */
const LONG_TASK_STEPS = 100_000;

/** One `--real` run at a time on this machine: both would use the same two test hosts. */
const LOCK_FILE = '/run/deskpool-demo-real.lock';

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** Takes the machine's `--real` lock (a lock left by a process that is gone is taken over). */
export async function lockRealOffice(): Promise<() => Promise<void>> {
  for (let attempt = 0; attempt < 2; attempt += 1) {
    try {
      await fs.writeFile(LOCK_FILE, `${process.pid}\n`, { flag: 'wx' });
      return () => fs.rm(LOCK_FILE, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number((await fs.readFile(LOCK_FILE, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(holder) && holder > 0 && alive(holder)) {
        throw new RealOfficeUnavailable(`another demo --real (pid ${holder}) is using the test hosts ${REAL_TEST_HOSTS.map((h) => h.name).join(' and ')}; wait for it to end (lock ${LOCK_FILE}).`);
      }
      await fs.rm(LOCK_FILE, { force: true });
    }
  }
  throw new RealOfficeUnavailable(`could not take the lock ${LOCK_FILE}; remove it if no demo --real is running.`);
}

/** Fails with what to do when this machine cannot run real guests: not root, no libvirtd, no guest image. */
export async function checkRealOffice(): Promise<void> {
  const uid = process.getuid?.();
  if (uid !== undefined && uid !== 0) {
    throw new RealOfficeUnavailable(`needs root (it drives ${LOCAL_URI} and starts two namespaced libvirt hosts); this process runs as uid ${uid}. Run it as root: sudo npm run demo -- --real`);
  }
  try {
    await execFileP('virsh', ['-c', LOCAL_URI, 'version'], { timeout: 20_000 });
  } catch (err) {
    const e = err as Error & { code?: string; stderr?: string };
    const why = e.code === 'ENOENT' ? 'virsh is not installed' : (e.stderr ?? e.message).trim().split('\n').slice(0, 2).join(' — ');
    throw new RealOfficeUnavailable(`libvirtd is not reachable at ${LOCAL_URI} (${why}). Install libvirt and start it with \`sudo bash scripts/services.sh\` (it starts libvirtd), or run the simulated demo without --real.`, err);
  }
  try {
    await ensureGuestImage();
  } catch (err) {
    throw new RealOfficeUnavailable(`the tiny test guest could not be built (${(err as Error).message.split('\n')[0]}). Build it with \`bash guest/build.sh\` (needs the Debian kernel and busybox packages).`, err);
  }
}

function realInventory(pc: number, kvm: boolean): HostInventory {
  return {
    hostname: `pc-${String(pc + 1).padStart(3, '0')}`,
    cpuCores: 8,
    cpuModel: pc === 0 ? 'this machine (qemu:///system)' : `namespaced libvirt host ${REAL_TEST_HOSTS[pc - 1]?.name}`,
    memoryMiB: 16384,
    diskGiB: 500,
    gpus: [],
    macAddresses: [`52:54:00:de:00:${(pc + 1).toString(16).padStart(2, '0')}`],
    hypervisor: { kvm, libvirtVersion: null, qemuVersion: null, liveMigration: false, hotplugCpu: true, hotplugMemory: true },
    agentVersion: '0.1.0',
    os: 'linux',
  };
}

/** Every "PROGRESS i/N" step a task printed, in order. */
export const progressSteps = (log: string): number[] => [...log.matchAll(/^PROGRESS (\d+)\/\d+\r?$/gm)].map((m) => Number(m[1]));
const resultLines = (log: string): number => [...log.matchAll(/^RESULT count=\d+\r?$/gm)].length;

/** Steps 1, 2, … k with none repeated or skipped: a resumed task counted on, it did not start over. */
export function countedOn(steps: readonly number[]): boolean {
  return steps.every((s, i) => s === i + 1);
}

export async function realHardware(ctx: HardwareContext): Promise<OfficeHardware> {
  const { scenario, fabric } = ctx;
  if (scenario.people.length !== 1 + REAL_TEST_HOSTS.length) throw new RangeError(`the real office has ${1 + REAL_TEST_HOSTS.length} PCs`);
  const unlock = await lockRealOffice();
  const testHosts: TestHost[] = [];
  const guests: CounterGuest[] = [];
  const drivers: LibvirtDriver[] = [];
  const close = async (taskIds: readonly string[]): Promise<void> => {
    // Batch VMs, checkpoints and console logs are named by the scheduler and agent (dp-task-<id>).
    for (const id of taskIds) {
      for (const d of drivers) {
        await d.destroy(`dp-task-${id}`).catch(() => undefined);
        await d.undefine(`dp-task-${id}`).catch(() => undefined);
      }
      await fs.rm(`/var/lib/deskpool/checkpoints/${id}.save`, { force: true });
      await fs.rm(`/var/lib/deskpool/consoles/dp-task-${id}.log`, { force: true });
    }
    for (const g of guests) {
      await g.remove();
      await fs.rm(desktopStatePath(g.domain), { force: true });
    }
    await Promise.all(testHosts.map((h) => h.down()));
    await unlock();
  };
  try {
    // Both test hosts come up side by side (each takes seconds), while this machine's libvirtd
    // is asked whether KVM really boots a guest here (DESKPOOL_DOMAIN_TYPE=kvm|qemu skips that);
    // the test hosts are namespaces of this machine, so the answer holds for them too.
    const [local, ...started] = await Promise.allSettled([
      createLibvirtDriver({ uri: LOCAL_URI, image: await ensureGuestImage(), namePrefix: 'dpt-demo-' }),
      ...REAL_TEST_HOSTS.map((h) => testHostUp(h.name, h.addr)),
    ]);
    for (const r of started) if (r.status === 'fulfilled') testHosts.push(r.value as TestHost);
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw new RealOfficeUnavailable((failed.reason as Error).message, failed.reason);
    if (local?.status !== 'fulfilled') throw new RealOfficeUnavailable(`libvirt at ${LOCAL_URI} could not be probed for KVM: ${(local?.reason as Error | undefined)?.message}`, local?.reason);
    const { kvm } = local.value as Awaited<ReturnType<typeof createLibvirtDriver>>;
    const uris: string[] = [LOCAL_URI, ...testHosts.map((h) => h.libvirtUri)];
    drivers.push(...uris.map((uri) => new LibvirtDriver({ uri, domainType: kvm.domainType })));
    const tag = randomBytes(2).toString('hex');
    // Everyone's desktop boots at their own PC before the clock starts (the office's morning).
    guests.push(...(await Promise.all(scenario.people.map((p) => CounterGuest.boot(drivers[p.homePc] as LibvirtDriver, ctx.workDir, `demo${tag}-${p.index + 1}`, 256, kvm.domainType)))));
    // A desktop may move to any PC (hot-desking): clean-up looks on all of them.
    for (const g of guests) for (const d of drivers) g.alsoOn(d);
    const guestOf = (p: Person): CounterGuest => {
      const g = guests[p.index];
      if (!g) throw new Error(`${p.name} has no desktop guest`);
      return g;
    };

    const realMsPerSimHour = 3_600_000 / ctx.speed;
    const nightSteps = Math.max(10, Math.round((ctx.taskHours * realMsPerSimHour) / STEP_MS));
    const jobs: DemoJob[] = [];
    if (ctx.tasksPerPc > 0) jobs.push({ name: 'nightly-count', taskCount: scenario.people.length * ctx.tasksPerPc, command: ['dp-count-to', String(nightSteps)], ...BATCH_TASK });
    // Work that outlasts the night, so the morning makes batch yield (checkpoint to shared storage).
    jobs.push({ name: 'long-count', taskCount: 1, command: ['dp-count-to', String(LONG_TASK_STEPS)], ...BATCH_TASK });

    const hardware: OfficeHardware = {
      describe: `3 PCs on real libvirt guests (pc-001 ${LOCAL_URI}, pc-002 ${uris[1]}, pc-003 ${uris[2]}; ${kvm.usable ? 'KVM' : `QEMU emulation: ${kvm.reason}`})`,
      pcs: scenario.people.map((p) => ({
        driver: realOfficeHypervisor(fabric, p.homePc, drivers[p.homePc] as LibvirtDriver),
        inventory: realInventory(p.homePc, kvm.usable),
        agentDriver: { kind: 'libvirt', uri: uris[p.homePc] ?? LOCAL_URI },
        libvirtUri: uris[p.homePc] ?? LOCAL_URI,
      })),
      desktopOf: (p) => ({ name: guestOf(p).domain, vcpus: 1, memoryMiB: guestOf(p).memoryMiB, diskGiB: 1, diskLocation: 'none' }),
      desktopsRunningAtStart: true,
      // The tiny guests are far below the 25% of a PC that batch may keep beside a present
      // person; with none allowed, the morning makes the batch guests yield (checkpoint).
      poolPolicy: { maxBatchPercentOwnerPresent: 0 },
      // A restore here takes real seconds, which are simulated hours at the demo's speed.
      settleAfterStoryMs: 90_000,
      jobs,
      batchCores: BATCH_TASK.cores,
      // Real operations take real seconds: a lost PC or a re-sent command is judged on real time
      // (half a minute), not on a few simulated minutes that pass in a second.
      timeouts: { heartbeatTimeoutMs: Math.max(120 * MIN, 30_000 * ctx.speed), redispatchAfterMs: Math.max(20 * MIN, 30_000 * ctx.speed) },
      everyMinute: () => noteGuestExits(fabric, drivers),
      async batchReports(taskOutput) {
        const ids = [...new Set(fabric.intervals.filter((i) => i.domain.startsWith('dp-task-')).map((i) => i.domain.slice('dp-task-'.length)))];
        const reports = await Promise.all(ids.map(async (id) => resultLines(await taskOutput(id))));
        return { tasksReportedDone: reports.filter((n) => n > 0).length, completionReports: reports.reduce((a, b) => a + b, 0) };
      },
      async extraChecks(taskOutput, taskIds) {
        const checks: InvariantCheck[] = [];
        const counters = await Promise.all(
          scenario.people.map(async (p) => {
            const g = guestOf(p);
            const before = await g.lastCount();
            const neverRebooted = await g.neverRebooted();
            // Someone who came in has their desktop running: it must still be counting.
            const counting = p.arrivesAt === null ? true : await g.waitCountAbove(before, 30_000).then(() => true, () => false);
            return { p, before, neverRebooted, counting };
          }),
        );
        const bad = counters.filter((c) => !c.neverRebooted || !c.counting);
        checks.push({
          name: 'guest counters continued',
          ok: bad.length === 0,
          detail:
            bad.length === 0
              ? `${counters.length} desktops counted on without starting again from 1 (${counters.map((c) => `${c.p.name} at ${c.before}`).join(', ')})`
              : bad.map((c) => `${c.p.name}: ${c.neverRebooted ? 'not counting any more' : 'counter started again from 1 (guest rebooted: state lost)'}`).join('; '),
        });
        const outputs = await Promise.all(taskIds.map(async (id) => ({ id, steps: progressSteps(await taskOutput(id)) })));
        const restarted = outputs.filter((o) => !countedOn(o.steps));
        checks.push({
          name: 'batch tasks counted on after checkpoints',
          ok: restarted.length === 0,
          detail: restarted.length === 0 ? `${outputs.length} tasks, ${outputs.reduce((s, o) => s + o.steps.length, 0)} steps in all, none repeated or skipped` : restarted.map((o) => `task ${o.id} steps ${o.steps.slice(0, 5).join(',')}…`).join('; '),
        });
        return checks;
      },
      close,
    };
    return hardware;
  } catch (err) {
    await close([]);
    throw err;
  }
}
