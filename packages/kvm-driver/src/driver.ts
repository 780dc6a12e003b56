// The one door to a hypervisor. Everything above this package (agent, remote mover, simulator)
// talks to a HypervisorDriver; LibvirtDriver and SimulatedDriver implement it identically, and
// test/contract.ts holds both to the same behaviour.
import { z } from 'zod';

/** Libvirt domain names we create: safe in XML, in file names and in shell-free argv. */
export const DomainNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'domain name: 1-63 chars of letters, digits, ".", "_", "-", starting with a letter or digit');
export type DomainName = z.infer<typeof DomainNameSchema>;

const AbsolutePathSchema = z
  .string()
  .min(2)
  .regex(/^\/[^\0]*$/, 'must be an absolute path');

export const DiskSpecSchema = z.object({
  /** Image file on the host that runs the domain. */
  path: AbsolutePathSchema,
  format: z.enum(['qcow2', 'raw']).default('qcow2'),
  /** Guest device name (virtio bus). */
  target: z.string().regex(/^vd[a-z]$/, 'target: vda..vdz'),
  readonly: z.boolean().default(false),
});
export type DiskSpec = z.infer<typeof DiskSpecSchema>;

const MacSchema = z.string().regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/, 'mac: lower-case aa:bb:cc:dd:ee:ff');
export const NetworkSpecSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('none') }),
  z.object({ type: z.literal('network'), network: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/), mac: MacSchema.optional() }),
  z.object({ type: z.literal('bridge'), bridge: z.string().regex(/^[A-Za-z0-9._-]{1,15}$/), mac: MacSchema.optional() }),
]);
export type NetworkSpec = z.infer<typeof NetworkSpecSchema>;

/** Direct kernel boot: how the test guest and batch VMs boot without a bootloader. */
export const KernelBootSchema = z.object({
  kernel: AbsolutePathSchema,
  initrd: AbsolutePathSchema.optional(),
  cmdline: z.string().max(4096).optional(),
});
export type KernelBoot = z.infer<typeof KernelBootSchema>;

export const DomainTypeSchema = z.enum(['kvm', 'qemu']);
export type DomainType = z.infer<typeof DomainTypeSchema>;

export const DomainSpecSchema = z
  .object({
    name: DomainNameSchema,
    /** libvirt 'kvm' (hardware) or 'qemu' (TCG emulation; see kvmUsability()). */
    domainType: DomainTypeSchema,
    vcpus: z.number().int().min(1).max(256),
    maxVcpus: z.number().int().min(1).max(256),
    memoryMiB: z.number().int().min(16).max(4 * 1024 * 1024),
    maxMemoryMiB: z.number().int().min(16).max(4 * 1024 * 1024),
    disks: z.array(DiskSpecSchema).max(16).default([]),
    network: NetworkSpecSchema.default({ type: 'none' }),
    /** Host file the guest's first serial port (ttyS0) is written to. */
    serialLogPath: AbsolutePathSchema,
    graphics: z.enum(['none', 'vnc']).default('none'),
    boot: KernelBootSchema.optional(),
  })
  .superRefine((s, ctx) => {
    if (s.vcpus > s.maxVcpus) ctx.addIssue({ code: 'custom', path: ['vcpus'], message: 'vcpus must be <= maxVcpus' });
    if (s.memoryMiB > s.maxMemoryMiB) ctx.addIssue({ code: 'custom', path: ['memoryMiB'], message: 'memoryMiB must be <= maxMemoryMiB' });
    const targets = new Set<string>();
    s.disks.forEach((d, i) => {
      if (targets.has(d.target)) ctx.addIssue({ code: 'custom', path: ['disks', i, 'target'], message: `duplicate disk target ${d.target}` });
      targets.add(d.target);
    });
    if (s.disks.length === 0 && !s.boot) ctx.addIssue({ code: 'custom', path: ['boot'], message: 'a domain needs a disk or a kernel to boot' });
  });
/** Input form (defaults optional); drivers parse it into DomainSpec. */
export type DomainSpecInput = z.input<typeof DomainSpecSchema>;
export type DomainSpec = z.output<typeof DomainSpecSchema>;

/**
 * 'saved' = shut off with a managed-save image (start/restore resumes it);
 * 'missing' = no such domain on this host.
 */
export const DomainStateSchema = z.enum(['running', 'paused', 'shutoff', 'saved', 'crashed', 'missing']);
export type DomainState = z.infer<typeof DomainStateSchema>;

export interface DomainStats {
  name: string;
  state: DomainState;
  vcpus: number;
  maxVcpus: number;
  /** Memory the guest currently has (live), MiB. */
  memoryMiB: number;
  maxMemoryMiB: number;
  /** Cumulative guest CPU time, ns (0 while not running). */
  cpuTimeNs: number;
  /** Host-side resident memory of the VM process, MiB, when the hypervisor reports it. */
  rssMiB?: number;
  blockReadBytes?: number;
  blockWriteBytes?: number;
  netRxBytes?: number;
  netTxBytes?: number;
}

export interface DomainSummary {
  name: string;
  state: DomainState;
  uuid?: string;
}

export interface HostInfo {
  hostname: string;
  cpus: number;
  memoryMiB: number;
  freeMemoryMiB: number;
  /** Domain type this driver uses for new domains on this host. */
  domainType: DomainType;
}

/** Progress of a long operation. fraction in [0,1] when known. */
export interface Progress {
  phase: string;
  bytesDone?: number;
  bytesTotal?: number;
  fraction?: number;
}

export interface OpOptions {
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
  /** Give up (OperationTimeout) after this long; drivers have sensible defaults. */
  timeoutMs?: number;
}

/** Every state-changing call says whether it changed anything, and the state afterwards. */
export interface OpResult {
  changed: boolean;
  state: DomainState;
}

export interface ShutdownOptions extends OpOptions {
  /** How long the guest gets to power off by itself before it is destroyed. Default 30 s. */
  gracefulTimeoutMs?: number;
}
export interface ShutdownResult extends OpResult {
  /** True when the guest did not power off in time and was destroyed. */
  forced: boolean;
}

export interface SaveToFileResult extends OpResult {
  path: string;
  /** Size of the saved image in bytes. */
  bytes: number;
}

export interface RestoreFromFileResult extends OpResult {
  name: string;
}

export interface MigrationTarget {
  /** libvirt connection URI of the target, e.g. qemu+tcp://10.0.0.2/system or qemu+ssh://root@pc42/system */
  uri: string;
  /** Data-channel URI, e.g. tcp://10.0.0.2 (needed when the target's hostname does not resolve). */
  migrateUri?: string;
}

export interface MigrateOptions extends OpOptions {
  /** Switch to post-copy once the first pass is done (bounded downtime; the source cannot take over again). */
  postCopy?: boolean;
  bandwidthMiBps?: number;
  /** Copy disk images too (no shared storage). */
  copyStorage?: boolean;
  /**
   * Also read the finished job's statistics (downtime, bytes sent) and the state from the target
   * afterwards: one more libvirt connection, to the target, after the migration (tens of ms).
   * Without it, bytes come from the last progress reading and the state is the source's.
   */
  jobStats?: boolean;
}

export interface MigrateResult extends OpResult {
  /** State on the target after migration. */
  state: DomainState;
  durationMs?: number;
  downtimeMs?: number;
  bytesTransferred?: number;
}

export type DomainEventType =
  | 'defined'
  | 'undefined'
  | 'started'
  | 'suspended'
  | 'resumed'
  | 'stopped'
  | 'saved'
  | 'migrated'
  | 'crashed';

export interface DomainEvent {
  name: string;
  type: DomainEventType;
  /** The hypervisor's own detail word (e.g. "Booted", "Paused", "Destroyed"). */
  detail: string;
  at: Date;
}

export interface EventOptions {
  signal?: AbortSignal;
}

export interface HypervisorDriver {
  /** Human-readable description of where this driver acts (e.g. "libvirt qemu:///system"). */
  readonly description: string;

  hostInfo(opts?: OpOptions): Promise<HostInfo>;

  /**
   * Creates or updates the persistent definition. changed=false when a domain with this name
   * already has exactly this definition. A changed definition of a running domain takes effect
   * at its next cold boot.
   */
  define(spec: DomainSpecInput, opts?: OpOptions): Promise<OpResult>;
  /** Removes the definition (and a managed-save image). The domain must not be running. changed=false if missing. */
  undefine(name: string, opts?: OpOptions): Promise<OpResult>;

  /** Boots a shut-off domain; a 'saved' domain resumes from its managed-save image instead. */
  start(name: string, opts?: OpOptions): Promise<OpResult>;
  /** Asks the guest to power off; destroys it after gracefulTimeoutMs. */
  shutdown(name: string, opts?: ShutdownOptions): Promise<ShutdownResult>;
  /** Hard power-off. */
  destroy(name: string, opts?: OpOptions): Promise<OpResult>;
  pause(name: string, opts?: OpOptions): Promise<OpResult>;
  resume(name: string, opts?: OpOptions): Promise<OpResult>;

  /** Suspend to disk (libvirt managed save). Afterwards state is 'saved'. */
  managedSave(name: string, opts?: OpOptions): Promise<OpResult>;
  /** Resume a 'saved' domain. Refuses (InvalidState) to cold-boot a domain that has no saved image. */
  restore(name: string, opts?: OpOptions): Promise<OpResult>;
  /**
   * Where the hypervisor keeps the managed-save image of a 'saved' domain (a normal save image,
   * restorable elsewhere with restoreFromFile); undefined when the domain has none.
   */
  managedSaveImagePath(name: string, opts?: OpOptions): Promise<string | undefined>;
  /**
   * Makes a transient domain (one restoreFromFile started without a definition here) persistent,
   * from its own current definition, so that it can later be suspended with managedSave.
   * changed=false when it already is.
   */
  persist(name: string, opts?: OpOptions): Promise<OpResult>;

  /** Save memory state to a file of our choosing (to move it elsewhere); the domain stops. */
  saveToFile(name: string, path: string, opts?: OpOptions): Promise<SaveToFileResult>;
  /** Start a domain from a state file written by saveToFile (here or on another host). */
  restoreFromFile(path: string, opts?: OpOptions): Promise<RestoreFromFileResult>;

  migrateLive(name: string, target: MigrationTarget, opts?: MigrateOptions): Promise<MigrateResult>;

  /** Set the live vCPU count (1..maxVcpus); also persisted for the next boot. */
  hotplugVcpus(name: string, vcpus: number, opts?: OpOptions): Promise<OpResult>;
  /** Set the live memory size (MiB, <= maxMemoryMiB); also persisted for the next boot. */
  hotplugMemory(name: string, memoryMiB: number, opts?: OpOptions): Promise<OpResult>;

  /** Never throws DomainNotFound: an unknown domain is 'missing'. */
  state(name: string, opts?: OpOptions): Promise<DomainState>;
  stats(name: string, opts?: OpOptions): Promise<DomainStats>;
  list(opts?: OpOptions): Promise<DomainSummary[]>;

  /** Life-cycle events of all domains until the signal aborts. */
  events(opts?: EventOptions): AsyncIterable<DomainEvent>;
}

// --- running commands (locally or over SSH) ------------------------------------------------

export interface RunOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
  stdin?: string | Buffer;
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A long-lived process talked to through its stdin (used for a persistent virsh session). */
export interface InteractiveProcess {
  write(data: string): void;
  onStdout(cb: (chunk: string) => void): void;
  onStderr(cb: (chunk: string) => void): void;
  onExit(cb: (code: number | null) => void): void;
  kill(): void;
}

/**
 * Runs one program with arguments, no shell. LocalCommandRunner uses child_process; the remote
 * engineer's SSH runner runs the same argv on another host. Implementations throw
 * OperationTimeout / OperationAborted / HostUnreachable, never for a non-zero exit code.
 */
export interface CommandRunner {
  readonly description: string;
  run(argv: readonly string[], opts?: RunOptions): Promise<CommandResult>;
  /** Long-running process whose stdout lines are streamed (used for `virsh event --loop`). */
  stream?(argv: readonly string[], opts: { signal: AbortSignal }): AsyncIterable<string>;
  /** Starts a long-lived process fed through stdin (lets Virsh keep one libvirt connection open). */
  interactive?(argv: readonly string[]): InteractiveProcess;
}
