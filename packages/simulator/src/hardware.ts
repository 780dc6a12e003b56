// What the demo office runs on: the PCs' hypervisors, the desktops, the batch workload and the
// checks that only that hardware can make. The story (office.ts), the clock and the summary are
// the same for the simulated office and for `--real`.
import type { AgentDeps } from '@deskpool/agent';
import type { HypervisorDriver } from '@deskpool/kvm-driver';
import type { HostInventory } from '@deskpool/protocol';
import type { OfficeFabric } from './office-hypervisor.js';
import type { Person, Scenario } from './scenario.js';
import type { InvariantCheck } from './summary.js';
import type { AcceleratedTime } from './time.js';

export interface DemoPc {
  driver: HypervisorDriver;
  inventory: HostInventory;
  /** The agent config's `driver` (the agent is handed `driver` itself). */
  agentDriver: { kind: 'simulated' } | { kind: 'libvirt'; uri: string };
  libvirtUri: string | null;
  executor?: AgentDeps['executor'];
}

/** A desktop as registered through POST /vms. */
export interface DemoDesktop {
  name: string;
  vcpus: number;
  memoryMiB: number;
  diskGiB: number;
  diskLocation: string;
}

/** A batch job the submitter posts at 18:00. */
export interface DemoJob {
  name: string;
  taskCount: number;
  command: string[];
  cores: number;
  memoryMiB: number;
}

export interface HardwareContext {
  scenario: Scenario;
  time: AcceleratedTime;
  fabric: OfficeFabric;
  /** Simulated seconds per real second. */
  speed: number;
  tasksPerPc: number;
  /** CPU time each task of the night's job needs, simulated hours. */
  taskHours: number;
  /** A directory of the run's own (under os.tmpdir()). */
  workDir: string;
}

export interface BatchReports {
  /** Distinct tasks whose guest reported completion. */
  tasksReportedDone: number;
  /** Completion reports in all (more than tasks when a finished task was placed again). */
  completionReports: number;
}

export interface OfficeHardware {
  /** For the first line: what the PCs are. */
  describe: string;
  pcs: DemoPc[];
  desktopOf(p: Person): DemoDesktop;
  /** Desktops already running on their home PCs when the clock starts (real guests booted first). */
  desktopsRunningAtStart: boolean;
  /** Pool policy fields this hardware sets on top of the office's (POST /pools). */
  poolPolicy: Record<string, unknown>;
  /**
   * Real ms to wait after 09:45 for desktops still being suspended, restored or moved (the clock
   * runs on; their waits count in full).
   */
  settleAfterStoryMs: number;
  jobs: DemoJob[];
  /** Cores of one batch task (for CPU-hours). */
  batchCores: number;
  /** Scheduler settings in simulated ms that real operations must not outrun. */
  timeouts: { heartbeatTimeoutMs: number; redispatchAfterMs: number };
  /** Called every simulated minute (at most every 250 ms of real time). */
  everyMinute(): Promise<void>;
  batchReports(taskOutput: (taskId: string) => Promise<string>): Promise<BatchReports>;
  /** Checks only this hardware can make (real guests: their counters). */
  extraChecks(taskOutput: (taskId: string) => Promise<string>, taskIds: readonly string[]): Promise<InvariantCheck[]>;
  close(taskIds: readonly string[]): Promise<void>;
}
