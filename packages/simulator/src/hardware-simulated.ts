// The demo office on simulated hypervisors: one SimulatedDriver per PC behind the office's
// shared storage and images (office-hypervisor.ts); a batch guest ends once it has had its CPU time.
import { SimulatedDriver } from '@deskpool/kvm-driver';
import type { HostInventory } from '@deskpool/protocol';
import type { DemoJob, HardwareContext, OfficeHardware } from './hardware.js';
import { batchGuestFinishes, desktopImage, officeHypervisor, type RunInterval } from './office-hypervisor.js';

const MIN = 60_000;
const PC = { cores: 8, memoryMiB: 16384, diskGiB: 500 } as const;
const DESKTOP = { vcpus: 2, memoryMiB: 4096 } as const;
export const BATCH_TASK = { cores: 2, memoryMiB: 2048 } as const;

export function simulatedInventory(pc: number): HostInventory {
  const hex = (pc + 1).toString(16).padStart(4, '0');
  return {
    hostname: `pc-${String(pc + 1).padStart(3, '0')}`,
    cpuCores: PC.cores,
    cpuModel: 'simulated office PC',
    memoryMiB: PC.memoryMiB,
    diskGiB: PC.diskGiB,
    gpus: [],
    macAddresses: [`52:54:00:00:${hex.slice(0, 2)}:${hex.slice(2)}`],
    hypervisor: { kvm: true, libvirtVersion: null, qemuVersion: null, liveMigration: true, hotplugCpu: true, hotplugMemory: true },
    agentVersion: '0.1.0',
    os: 'simulated',
  };
}

export function simulatedHardware(ctx: HardwareContext): OfficeHardware {
  const { scenario, time, fabric } = ctx;
  const pcs = scenario.people.map((p) => {
    fabric.addImage(desktopImage(`desk-${p.name}`, DESKTOP.vcpus, DESKTOP.memoryMiB));
    const driver = officeHypervisor(fabric, p.homePc, new SimulatedDriver({ hostname: simulatedInventory(p.homePc).hostname, cpus: PC.cores, memoryMiB: PC.memoryMiB, clock: time }));
    return {
      driver,
      inventory: simulatedInventory(p.homePc),
      agentDriver: { kind: 'simulated' } as const,
      libvirtUri: null,
      // Checkpoints live on the office's shared storage, wherever they were written.
      executor: { stateFileExists: (file: string) => Promise.resolve(fabric.holderOf(file) !== undefined) },
    };
  });
  const taskCount = scenario.people.length * ctx.tasksPerPc;
  const jobs: DemoJob[] = taskCount > 0 ? [{ name: 'nightly-render', taskCount, command: ['render', '--frame', '${TASK_INDEX}'], cores: BATCH_TASK.cores, memoryMiB: BATCH_TASK.memoryMiB }] : [];
  const workMs = ctx.taskHours * 60 * MIN;
  // A task whose completion raced a checkpoint may be placed again; its guest then reports again.
  const reported = new Set<RunInterval>();
  const finished = new Set<string>();

  return {
    describe: `${scenario.people.length} PCs (simulated hypervisors)`,
    pcs,
    desktopOf: (p) => ({ name: `desk-${p.name}`, vcpus: DESKTOP.vcpus, memoryMiB: DESKTOP.memoryMiB, diskGiB: 40, diskLocation: 'shared:/desktops' }),
    desktopsRunningAtStart: false,
    poolPolicy: {},
    settleAfterStoryMs: 0,
    jobs,
    batchCores: BATCH_TASK.cores,
    // Simulated time: a PC is lost after two silent hours (the event loop of a busy machine
    // can stall for a second, which is a quarter of an hour here).
    timeouts: { heartbeatTimeoutMs: 120 * MIN, redispatchAfterMs: 20 * MIN },
    async everyMinute() {
      // The batch guests: a task ends once it has had its CPU time.
      const now = time.now();
      const byDomain = new Map<string, number>();
      for (const i of fabric.intervals) {
        if (!i.domain.startsWith('dp-task-')) continue;
        byDomain.set(i.domain, (byDomain.get(i.domain) ?? 0) + Math.max(0, (i.until ?? now) - i.from));
      }
      const due = fabric.intervals.filter((i) => i.until === null && i.domain.startsWith('dp-task-') && (byDomain.get(i.domain) ?? 0) >= workMs && !reported.has(i));
      for (const i of due) {
        reported.add(i);
        const taskId = i.domain.slice('dp-task-'.length);
        // The guest powers off when its work is done; its agent reports task-finished.
        if (batchGuestFinishes(fabric, i.pc, i.domain, `frames rendered for ${taskId}`)) finished.add(taskId);
      }
    },
    batchReports: () => Promise.resolve({ tasksReportedDone: finished.size, completionReports: reported.size }),
    extraChecks: () => Promise.resolve([]),
    close: () => Promise.resolve(),
  };
}
