// A hypervisor in memory, for the simulator, scale tests and chaos work. It behaves like
// LibvirtDriver (the same contract tests run against both) and takes modelled time on an
// injected clock: restore = guest memory / disk read bandwidth, live migration = guest memory
// (plus what it dirties meanwhile) / link bandwidth. Its guests understand the tiny guest's
// kernel command line (deskpool.mode=counter|count-to:N, deskpool.touch=MiB) and print the same
// serial output, so tests read "COUNT n" from either.
import { createHash } from 'node:crypto';
import type {
  DomainEvent,
  DomainSpec,
  DomainSpecInput,
  DomainState,
  DomainStats,
  DomainSummary,
  EventOptions,
  HostInfo,
  HypervisorDriver,
  MigrateOptions,
  MigrateResult,
  MigrationTarget,
  OpOptions,
  OpResult,
  Progress,
  RestoreFromFileResult,
  SaveToFileResult,
  ShutdownOptions,
  ShutdownResult,
} from '../driver.js';
import { DomainNameSchema, DomainSpecSchema } from '../driver.js';
import {
  DomainNotFound,
  HostUnreachable,
  InsufficientResources,
  InvalidSpec,
  InvalidState,
  LibvirtDown,
  MigrationFailed,
  OperationAborted,
  OperationTimeout,
} from '../errors.js';
import { GUEST_READY_BANNER } from '../guest.js';
import { VirtualClock, type SimClock } from './clock.js';

export interface SimTimings {
  /** Kernel start to the guest's banner. */
  bootMs: number;
  /** Fixed cost of any state-changing call (the hypervisor's own bookkeeping). */
  opOverheadMs: number;
  diskWriteMiBps: number;
  diskReadMiBps: number;
  /** Network bandwidth to other hosts (live migration). */
  linkMiBps: number;
  /** How fast a running guest dirties memory (makes live migration re-send pages). */
  dirtyMiBps: number;
  /** Pause during the final live-migration pass. */
  migrationDowntimeMs: number;
  /** How long a guest takes to react to the ACPI power button. */
  acpiShutdownMs: number;
  /** Memory a freshly booted guest uses before its task touches more. */
  guestBaseMiB: number;
  /** Guest memory filled per second by deskpool.touch. */
  touchMiBps: number;
}

export const DEFAULT_SIM_TIMINGS: SimTimings = {
  bootMs: 2000,
  opOverheadMs: 100,
  diskWriteMiBps: 400,
  diskReadMiBps: 800,
  linkMiBps: 110,
  dirtyMiBps: 4,
  migrationDowntimeMs: 150,
  acpiShutdownMs: 500,
  guestBaseMiB: 40,
  touchMiBps: 400,
};

export type SimOperation =
  | 'hostInfo'
  | 'define'
  | 'undefine'
  | 'start'
  | 'shutdown'
  | 'destroy'
  | 'pause'
  | 'resume'
  | 'managedSave'
  | 'restore'
  | 'managedSaveImagePath'
  | 'persist'
  | 'saveToFile'
  | 'restoreFromFile'
  | 'migrateLive'
  | 'hotplugVcpus'
  | 'hotplugMemory'
  | 'state'
  | 'stats'
  | 'list';

/** A fault to inject: every matching call waits delayMs, then fails with error (if given). */
export interface FaultRule {
  operation?: SimOperation | '*';
  domain?: string;
  /** How many calls it hits (default: 1; Infinity for all). */
  times?: number;
  delayMs?: number;
  error?: (operation: SimOperation, domain: string | undefined) => Error;
}

export interface SimulatedDriverOptions {
  hostname?: string;
  cpus?: number;
  memoryMiB?: number;
  /** Memory the host keeps for itself. */
  hostReserveMiB?: number;
  /** Free space for save images, by path prefix (longest prefix wins). Default '/' = 1 TiB. */
  diskFreeBytes?: Record<string, number>;
  timings?: Partial<SimTimings>;
  clock?: SimClock;
  /** Hosts that can reach each other for live migration, by URI. */
  network?: SimNetwork;
  /** libvirt-style URI of this host (for migration targets). Default sim://<hostname>. */
  uri?: string;
}

/** Registry of simulated hosts by URI, shared by the hosts that can migrate to each other. */
export class SimNetwork {
  private readonly hosts = new Map<string, SimulatedDriver>();
  private readonly cut = new Set<string>();
  register(uri: string, driver: SimulatedDriver): void {
    this.hosts.set(uri, driver);
  }
  lookup(uri: string): SimulatedDriver | undefined {
    return this.cut.has(uri) ? undefined : this.hosts.get(uri);
  }
  /** Makes a host unreachable (partition) or reachable again. */
  setReachable(uri: string, reachable: boolean): void {
    if (reachable) this.cut.delete(uri);
    else this.cut.add(uri);
  }
}

interface GuestTaskModel {
  mode: string;
  touchMiB: number;
  poweroff: boolean;
}

/** What lives in guest memory: survives save/restore and migration, lost on cold boot. */
interface GuestMemory {
  /** Guest time since boot (ms) while not paused. */
  guestMs: number;
  bannerPrinted: boolean;
  touchedPrinted: boolean;
  /** Last counter/progress step printed. */
  printed: number;
  done: boolean;
}

interface SimDomain {
  spec: DomainSpec;
  hash: string;
  state: 'running' | 'paused' | 'shutoff' | 'crashed';
  /** Present while running or paused. */
  mem?: GuestMemory;
  /** `paused`: a guest saved while paused comes back paused, as libvirt does. */
  managedSave?: { mem: GuestMemory; bytes: number; path: string; paused: boolean };
  vcpus: number;
  memoryMiB: number;
  cpuTimeNs: number;
  /** Virtual time the guest model was last brought up to date. */
  syncedAt: number;
  /** Pending graceful power-off (virtual time). */
  acpiOffAt?: number;
}

interface SavedFile {
  spec: DomainSpec;
  mem: GuestMemory;
  paused: boolean;
  bytes: number;
  vcpus: number;
  memoryMiB: number;
}

const MiB = 1024 * 1024;
const COUNTER_STEP_MS = 200;

export class SimulatedDriver implements HypervisorDriver {
  readonly description: string;
  readonly uri: string;
  readonly clock: SimClock;
  readonly timings: SimTimings;
  private readonly hostname: string;
  private readonly cpus: number;
  private readonly memoryMiB: number;
  private readonly reserveMiB: number;
  private readonly disks: Map<string, number>;
  private readonly domains = new Map<string, SimDomain>();
  private readonly files = new Map<string, SavedFile>();
  private readonly serial = new Map<string, string>();
  private readonly listeners = new Set<(e: DomainEvent) => void>();
  private faults: (FaultRule & { left: number })[] = [];
  private down = false;

  constructor(opts: SimulatedDriverOptions = {}) {
    this.hostname = opts.hostname ?? 'sim-host';
    this.cpus = opts.cpus ?? 8;
    this.memoryMiB = opts.memoryMiB ?? 16384;
    this.reserveMiB = opts.hostReserveMiB ?? 512;
    this.disks = new Map(Object.entries(opts.diskFreeBytes ?? { '/': 1024 ** 4 }));
    if (!this.disks.has('/')) this.disks.set('/', 1024 ** 4);
    this.timings = { ...DEFAULT_SIM_TIMINGS, ...opts.timings };
    this.clock = opts.clock ?? new VirtualClock();
    this.uri = opts.uri ?? `sim://${this.hostname}`;
    this.description = `simulated ${this.uri}`;
    if (opts.network) this.joinNetwork(opts.network);
  }

  // --- simulation controls (not part of HypervisorDriver) -------------------------------

  /** libvirtd stops (true) or comes back (false); guests keep running meanwhile. */
  setHypervisorDown(down: boolean): void {
    this.down = down;
  }

  /** Adds a fault; returns a function that removes it. */
  injectFault(rule: FaultRule): () => void {
    const entry = { ...rule, left: rule.times ?? 1 };
    this.faults.push(entry);
    return () => {
      this.faults = this.faults.filter((f) => f !== entry);
    };
  }

  /** The guest kernel panics: the domain is 'crashed' until destroyed. */
  crashGuest(name: string): void {
    this.sync();
    const d = this.domains.get(name);
    if (!d || (d.state !== 'running' && d.state !== 'paused')) throw new InvalidState(name, d?.state ?? 'missing', 'crash');
    d.state = 'crashed';
    delete d.mem;
    this.emit(name, 'crashed', 'Panicked');
  }

  /**
   * The guest's own work ends (what a real batch guest does when its command finishes and it
   * was booted with deskpool.poweroff=1): it prints its result line and powers off.
   */
  guestExit(name: string, exitCode: number, result?: string): void {
    this.sync();
    const d = this.domains.get(name);
    if (!d || d.state !== 'running') throw new InvalidState(name, d?.state ?? 'missing', 'guest exit');
    this.appendSerial(d, `DESKPOOL-RESULT exit=${exitCode}${result ? ` ${result}` : ''}\nDESKPOOL-GUEST DONE rc=${exitCode}\n`);
    this.stop(name, d, 'Shutdown');
  }

  setDiskFree(prefix: string, bytes: number): void {
    this.disks.set(prefix, bytes);
  }

  /** What a domain's serial console printed so far (by the spec's serialLogPath). */
  serialLog(path: string): string {
    this.sync();
    return this.serial.get(path) ?? '';
  }

  /** Whether a save file exists on this host (for the remote mover's simulation). */
  hasFile(path: string): boolean {
    return this.files.has(path);
  }

  /** Copies a save file to another simulated host (what SFTP does for real). */
  copyFileTo(path: string, target: SimulatedDriver, targetPath = path): number {
    const f = this.files.get(path);
    if (!f) throw new InvalidSpec(`no such file ${path} on ${this.hostname}`, [{ path: 'path', message: 'does not exist' }]);
    target.takeDisk(targetPath, f.bytes);
    target.files.set(targetPath, structuredClone(f));
    return f.bytes;
  }

  deleteFile(path: string): void {
    const f = this.files.get(path);
    if (!f) return;
    this.files.delete(path);
    this.giveDisk(path, f.bytes);
  }

  /** Brings every guest up to the clock's present (serial output, power-offs). */
  sync(): void {
    const now = this.clock.now();
    for (const [name, d] of this.domains) this.advanceGuest(name, d, now);
  }

  // --- reading ---------------------------------------------------------------------------

  async hostInfo(opts: OpOptions = {}): Promise<HostInfo> {
    await this.enter('hostInfo', undefined, opts);
    return { hostname: this.hostname, cpus: this.cpus, memoryMiB: this.memoryMiB, freeMemoryMiB: this.freeMemoryMiB(), domainType: 'qemu' };
  }

  async state(name: string, opts: OpOptions = {}): Promise<DomainState> {
    await this.enter('state', name, opts);
    const d = this.domains.get(name);
    return d ? stateOf(d) : 'missing';
  }

  async stats(name: string, opts: OpOptions = {}): Promise<DomainStats> {
    await this.enter('stats', name, opts);
    const d = this.need(name);
    const live = d.state === 'running' || d.state === 'paused';
    return {
      name,
      state: stateOf(d),
      vcpus: d.vcpus,
      maxVcpus: d.spec.maxVcpus,
      memoryMiB: d.memoryMiB,
      maxMemoryMiB: d.spec.maxMemoryMiB,
      cpuTimeNs: d.cpuTimeNs,
      ...(live && d.mem ? { rssMiB: this.usedMiB(d, d.mem) } : {}),
    };
  }

  async list(opts: OpOptions = {}): Promise<DomainSummary[]> {
    await this.enter('list', undefined, opts);
    return [...this.domains.entries()].map(([name, d]) => ({ name, state: stateOf(d) }));
  }

  // --- definition ------------------------------------------------------------------------

  async define(input: DomainSpecInput, opts: OpOptions = {}): Promise<OpResult> {
    const parsed = DomainSpecSchema.safeParse(input);
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
      throw new InvalidSpec(`invalid domain spec: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues);
    }
    const spec = parsed.data;
    await this.enter('define', spec.name, opts);
    const hash = createHash('sha256').update(JSON.stringify(spec)).digest('hex');
    const existing = this.domains.get(spec.name);
    if (existing) {
      if (existing.hash === hash && existing.vcpus === spec.vcpus && existing.memoryMiB === spec.memoryMiB) return { changed: false, state: stateOf(existing) };
      existing.spec = spec;
      existing.hash = hash;
      if (existing.state === 'shutoff') {
        existing.vcpus = spec.vcpus;
        existing.memoryMiB = spec.memoryMiB;
      }
      this.emit(spec.name, 'defined', 'Updated');
      return { changed: true, state: stateOf(existing) };
    }
    this.domains.set(spec.name, { spec, hash, state: 'shutoff', vcpus: spec.vcpus, memoryMiB: spec.memoryMiB, cpuTimeNs: 0, syncedAt: this.clock.now() });
    this.emit(spec.name, 'defined', 'Added');
    return { changed: true, state: 'shutoff' };
  }

  async undefine(name: string, opts: OpOptions = {}): Promise<OpResult> {
    await this.enter('undefine', name, opts);
    const d = this.domains.get(name);
    if (!d) return { changed: false, state: 'missing' };
    if (d.state === 'running' || d.state === 'paused') throw new InvalidState(name, d.state, 'undefine');
    if (d.managedSave) this.giveDisk(d.managedSave.path, d.managedSave.bytes);
    this.domains.delete(name);
    this.emit(name, 'undefined', 'Removed');
    return { changed: true, state: 'missing' };
  }

  // --- power -----------------------------------------------------------------------------

  async start(name: string, opts: OpOptions = {}): Promise<OpResult> {
    await this.enter('start', name, opts);
    const d = this.need(name);
    if (d.state === 'running' || d.state === 'paused') return { changed: false, state: d.state };
    if (d.managedSave) return this.restore(name, opts);
    this.ensureMemoryFits(name, d.spec.maxMemoryMiB, 'start');
    opts.onProgress?.({ phase: 'booting' });
    await this.take(this.timings.opOverheadMs, 'start', opts);
    d.state = 'running';
    d.vcpus = d.spec.vcpus;
    d.memoryMiB = d.spec.memoryMiB;
    d.mem = { guestMs: 0, bannerPrinted: false, touchedPrinted: false, printed: 0, done: false };
    d.syncedAt = this.clock.now();
    this.emit(name, 'started', 'Booted');
    opts.onProgress?.({ phase: 'done', fraction: 1 });
    return { changed: true, state: 'running' };
  }

  async shutdown(name: string, opts: ShutdownOptions = {}): Promise<ShutdownResult> {
    await this.enter('shutdown', name, opts);
    const d = this.need(name);
    if (d.state !== 'running' && d.state !== 'paused') return { changed: false, state: stateOf(d), forced: false };
    const grace = opts.gracefulTimeoutMs ?? 30_000;
    if (d.state === 'running' && this.timings.acpiShutdownMs <= grace) {
      d.acpiOffAt = this.clock.now() + this.timings.acpiShutdownMs;
      await this.take(this.timings.acpiShutdownMs, 'shutdown', opts);
      this.sync();
      if (stateOf(d) === 'shutoff') return { changed: true, state: 'shutoff', forced: false };
    } else {
      await this.take(Math.min(grace, 30_000), 'shutdown', opts);
    }
    this.stop(name, d, 'Destroyed');
    return { changed: true, state: 'shutoff', forced: true };
  }

  async destroy(name: string, opts: OpOptions = {}): Promise<OpResult> {
    await this.enter('destroy', name, opts);
    const d = this.need(name);
    if (d.state !== 'running' && d.state !== 'paused' && d.state !== 'crashed') return { changed: false, state: stateOf(d) };
    this.stop(name, d, 'Destroyed');
    return { changed: true, state: stateOf(d) };
  }

  async pause(name: string, opts: OpOptions = {}): Promise<OpResult> {
    await this.enter('pause', name, opts);
    const d = this.need(name);
    if (d.state === 'paused') return { changed: false, state: 'paused' };
    if (d.state !== 'running') throw new InvalidState(name, stateOf(d), 'pause');
    d.state = 'paused';
    this.emit(name, 'suspended', 'Paused');
    return { changed: true, state: 'paused' };
  }

  async resume(name: string, opts: OpOptions = {}): Promise<OpResult> {
    await this.enter('resume', name, opts);
    const d = this.need(name);
    if (d.state === 'running') return { changed: false, state: 'running' };
    if (d.state !== 'paused') throw new InvalidState(name, stateOf(d), 'resume');
    d.state = 'running';
    d.syncedAt = this.clock.now();
    this.emit(name, 'resumed', 'Unpaused');
    return { changed: true, state: 'running' };
  }

  // --- suspend to disk -------------------------------------------------------------------

  async managedSave(name: string, opts: OpOptions = {}): Promise<OpResult> {
    await this.enter('managedSave', name, opts);
    const d = this.need(name);
    if (d.managedSave && d.state === 'shutoff') return { changed: false, state: 'saved' };
    if ((d.state !== 'running' && d.state !== 'paused') || !d.mem) throw new InvalidState(name, stateOf(d), 'suspend to disk');
    const path = `/var/lib/libvirt/qemu/save/${name}.save`;
    const bytes = this.usedMiB(d, d.mem) * MiB;
    this.takeDisk(path, bytes);
    await this.transfer(bytes, this.timings.diskWriteMiBps, 'saving', 'managedSave', opts).catch((e: unknown) => {
      this.giveDisk(path, bytes);
      throw e;
    });
    d.managedSave = { mem: d.mem, bytes, path, paused: d.state === 'paused' };
    this.stop(name, d, 'Saved');
    return { changed: true, state: 'saved' };
  }

  async restore(name: string, opts: OpOptions = {}): Promise<OpResult> {
    await this.enter('restore', name, opts);
    const d = this.need(name);
    if (d.state === 'running' || d.state === 'paused') return { changed: false, state: d.state };
    const saved = d.managedSave;
    if (!saved) throw new InvalidState(name, stateOf(d), 'restore (no saved state; use start to boot it)');
    this.ensureMemoryFits(name, d.spec.maxMemoryMiB, 'restore');
    await this.transfer(saved.bytes, this.timings.diskReadMiBps, 'restoring', 'restore', opts);
    this.giveDisk(saved.path, saved.bytes);
    delete d.managedSave;
    this.run(name, d, saved.mem, 'Restored');
    return { changed: true, state: this.pauseIf(name, d, saved.paused) };
  }

  async managedSaveImagePath(name: string, opts: OpOptions = {}): Promise<string | undefined> {
    await this.enter('managedSaveImagePath', name, opts);
    const d = this.domains.get(name);
    return d?.state === 'shutoff' ? d.managedSave?.path : undefined;
  }

  /** Simulated domains restored from a file are always defined: nothing to do. */
  async persist(name: string, opts: OpOptions = {}): Promise<OpResult> {
    await this.enter('persist', name, opts);
    return { changed: false, state: stateOf(this.need(name)) };
  }

  async saveToFile(name: string, path: string, opts: OpOptions = {}): Promise<SaveToFileResult> {
    assertAbsolute(path);
    await this.enter('saveToFile', name, opts);
    const d = this.need(name);
    if (d.state !== 'running' && d.state !== 'paused') {
      const f = this.files.get(path);
      if (f && f.spec.name === name) return { changed: false, state: stateOf(d), path, bytes: f.bytes };
      throw new InvalidState(name, stateOf(d), 'save to file');
    }
    const mem = d.mem;
    if (!mem) throw new InvalidState(name, stateOf(d), 'save to file');
    const bytes = this.usedMiB(d, mem) * MiB;
    const replaced = this.files.get(path);
    if (replaced) this.deleteFile(path);
    this.takeDisk(path, bytes);
    await this.transfer(bytes, this.timings.diskWriteMiBps, 'saving', 'saveToFile', opts).catch((e: unknown) => {
      this.giveDisk(path, bytes);
      throw e;
    });
    this.files.set(path, { spec: d.spec, mem: structuredClone(mem), paused: d.state === 'paused', bytes, vcpus: d.vcpus, memoryMiB: d.memoryMiB });
    this.stop(name, d, 'Saved');
    return { changed: true, state: 'shutoff', path, bytes };
  }

  async restoreFromFile(path: string, opts: OpOptions = {}): Promise<RestoreFromFileResult> {
    assertAbsolute(path);
    await this.enter('restoreFromFile', undefined, opts);
    const f = this.files.get(path);
    if (!f) throw new InvalidSpec(`${path} is not a saved domain image`, [{ path: 'path', message: 'not a save image' }]);
    const name = f.spec.name;
    const existing = this.domains.get(name);
    if (existing && (existing.state === 'running' || existing.state === 'paused')) return { changed: false, state: existing.state, name };
    this.ensureMemoryFits(name, f.spec.maxMemoryMiB, 'restore');
    await this.transfer(f.bytes, this.timings.diskReadMiBps, 'restoring', 'restoreFromFile', opts);
    const d: SimDomain = existing ?? { spec: f.spec, hash: '', state: 'shutoff', vcpus: f.vcpus, memoryMiB: f.memoryMiB, cpuTimeNs: 0, syncedAt: this.clock.now() };
    d.vcpus = f.vcpus;
    d.memoryMiB = f.memoryMiB;
    this.domains.set(name, d);
    this.run(name, d, structuredClone(f.mem), 'Restored');
    return { changed: true, state: this.pauseIf(name, d, f.paused), name };
  }

  async migrateLive(name: string, target: MigrationTarget, opts: MigrateOptions = {}): Promise<MigrateResult> {
    await this.enter('migrateLive', name, opts);
    const d = this.need(name);
    if ((d.state !== 'running' && d.state !== 'paused') || !d.mem) throw new InvalidState(name, stateOf(d), 'migrate');
    const dest = this.networkRef?.lookup(target.uri);
    if (!dest) throw new HostUnreachable(target.uri, 'no such simulated host on this network');
    if (dest === this) throw new MigrationFailed(name, 'the target is this host');
    if (dest.down) throw new MigrationFailed(name, `libvirt on ${target.uri} is not answering`);
    if (dest.domains.get(name)?.state === 'running') throw new MigrationFailed(name, 'a domain of that name already runs on the target');
    if (dest.freeMemoryMiB() < d.spec.maxMemoryMiB) throw new InsufficientResources('memory', `not enough memory on ${target.uri} for ${name}`);
    const link = Math.min(this.timings.linkMiBps, opts.bandwidthMiBps ?? Infinity);
    const used = this.usedMiB(d, d.mem);
    // Pre-copy: each pass re-sends what the guest dirtied during the previous one.
    const dirty = d.state === 'running' && !opts.postCopy ? this.timings.dirtyMiBps : 0;
    if (dirty >= link) throw new MigrationFailed(name, 'the guest dirties memory faster than the link carries it; use postCopy');
    const sentMiB = used * (link / (link - dirty));
    const started = this.clock.now();
    await this.transfer(sentMiB * MiB, link, 'migrating', 'migrateLive', opts);
    await this.take(this.timings.migrationDowntimeMs, 'migrateLive', opts);
    const mem = d.mem;
    this.domains.delete(name);
    this.emit(name, 'migrated', 'Migrated');
    const moved: SimDomain = { spec: d.spec, hash: d.hash, state: 'shutoff', vcpus: d.vcpus, memoryMiB: d.memoryMiB, cpuTimeNs: d.cpuTimeNs, syncedAt: dest.clock.now() };
    dest.domains.set(name, moved);
    dest.run(name, moved, mem, 'Migrated');
    if (d.state === 'paused') moved.state = 'paused';
    return { changed: true, state: stateOf(moved), durationMs: this.clock.now() - started, downtimeMs: this.timings.migrationDowntimeMs, bytesTransferred: Math.round(sentMiB * MiB) };
  }

  // --- hot-plug --------------------------------------------------------------------------

  async hotplugVcpus(name: string, vcpus: number, opts: OpOptions = {}): Promise<OpResult> {
    await this.enter('hotplugVcpus', name, opts);
    const d = this.need(name);
    if (!Number.isInteger(vcpus) || vcpus < 1 || vcpus > d.spec.maxVcpus) {
      throw new InvalidSpec(`vcpus must be 1..${d.spec.maxVcpus} for ${name}`, [{ path: 'vcpus', message: `must be an integer in 1..${d.spec.maxVcpus} (maxVcpus)` }]);
    }
    if (d.vcpus === vcpus) return { changed: false, state: stateOf(d) };
    await this.take(this.timings.opOverheadMs, 'hotplugVcpus', opts);
    d.vcpus = vcpus;
    return { changed: true, state: stateOf(d) };
  }

  async hotplugMemory(name: string, memoryMiB: number, opts: OpOptions = {}): Promise<OpResult> {
    await this.enter('hotplugMemory', name, opts);
    const d = this.need(name);
    if (!Number.isInteger(memoryMiB) || memoryMiB < 16 || memoryMiB > d.spec.maxMemoryMiB) {
      throw new InvalidSpec(`memoryMiB must be 16..${d.spec.maxMemoryMiB} for ${name}`, [{ path: 'memoryMiB', message: `must be an integer in 16..${d.spec.maxMemoryMiB} (maxMemoryMiB)` }]);
    }
    if (d.memoryMiB === memoryMiB) return { changed: false, state: stateOf(d) };
    await this.take(this.timings.opOverheadMs, 'hotplugMemory', opts);
    d.memoryMiB = memoryMiB;
    return { changed: true, state: stateOf(d) };
  }

  // --- events ----------------------------------------------------------------------------

  async *events(opts: EventOptions = {}): AsyncIterable<DomainEvent> {
    const queue: DomainEvent[] = [];
    let wake: (() => void) | undefined;
    const listener = (e: DomainEvent): void => {
      queue.push(e);
      wake?.();
    };
    const onAbort = (): void => wake?.();
    this.listeners.add(listener);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      while (!opts.signal?.aborted) {
        const next = queue.shift();
        if (next) {
          yield next;
          continue;
        }
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
    } finally {
      this.listeners.delete(listener);
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  // --- internals -------------------------------------------------------------------------

  private networkRef: SimNetwork | undefined;

  /** Lets migrateLive find peers (set by the constructor's network option). */
  joinNetwork(network: SimNetwork): void {
    this.networkRef = network;
    network.register(this.uri, this);
  }

  private async enter(op: SimOperation, name: string | undefined, opts: OpOptions): Promise<void> {
    if (opts.signal?.aborted) throw new OperationAborted(op);
    if (name !== undefined && !DomainNameSchema.safeParse(name).success) {
      throw new InvalidSpec(`invalid domain name ${JSON.stringify(name)}`, [{ path: 'name', message: 'invalid domain name' }]);
    }
    if (this.down) throw new LibvirtDown(this.uri, 'simulated: libvirtd is down');
    for (const f of this.faults) {
      if (f.left <= 0) continue;
      if (f.operation && f.operation !== '*' && f.operation !== op) continue;
      if (f.domain && f.domain !== name) continue;
      f.left -= 1;
      if (f.delayMs) await this.take(f.delayMs, op, opts);
      if (f.error) throw f.error(op, name);
    }
    this.faults = this.faults.filter((f) => f.left > 0);
    this.sync();
  }

  private need(name: string): SimDomain {
    const d = this.domains.get(name);
    if (!d) throw new DomainNotFound(name);
    return d;
  }

  private freeMemoryMiB(): number {
    let used = this.reserveMiB;
    for (const d of this.domains.values()) if (d.state === 'running' || d.state === 'paused') used += d.spec.maxMemoryMiB;
    return Math.max(0, this.memoryMiB - used);
  }

  private ensureMemoryFits(name: string, needMiB: number, operation: string): void {
    const free = this.freeMemoryMiB();
    if (needMiB > free) throw new InsufficientResources('memory', `cannot ${operation} ${name}: it needs ${needMiB} MiB, the host has ${free} MiB free`);
  }

  private diskPrefix(path: string): string {
    let best = '/';
    for (const p of this.disks.keys()) if (path.startsWith(p) && p.length > best.length) best = p;
    return best;
  }

  private takeDisk(path: string, bytes: number): void {
    const prefix = this.diskPrefix(path);
    const free = this.disks.get(prefix) ?? 0;
    if (bytes > free) throw new InsufficientResources('disk', `not enough disk space for ${path}: needs ${bytes} bytes, ${free} free`);
    this.disks.set(prefix, free - bytes);
  }

  private giveDisk(path: string, bytes: number): void {
    const prefix = this.diskPrefix(path);
    this.disks.set(prefix, (this.disks.get(prefix) ?? 0) + bytes);
  }

  private usedMiB(d: SimDomain, mem: GuestMemory): number {
    const task = parseTask(d.spec);
    const touched = Math.min(task.touchMiB, Math.max(0, (mem.guestMs - this.timings.bootMs) / 1000) * this.timings.touchMiBps);
    return Math.min(d.memoryMiB, Math.round(this.timings.guestBaseMiB + touched));
  }

  /** Takes bytes / bandwidth (+ overhead) of clock time, reporting progress; checks space first. */
  private async transfer(bytes: number, mibps: number, phase: string, op: SimOperation, opts: OpOptions): Promise<void> {
    const totalMs = this.timings.opOverheadMs + (bytes / MiB / mibps) * 1000;
    const steps = 4;
    const report = (done: number): void => opts.onProgress?.({ phase, bytesDone: Math.round(done), bytesTotal: Math.round(bytes), fraction: bytes ? done / bytes : 1 } satisfies Progress);
    report(0);
    for (let i = 1; i <= steps; i++) {
      await this.take(totalMs / steps, op, opts);
      report((bytes * i) / steps);
    }
    opts.onProgress?.({ phase: 'done', fraction: 1 });
  }

  /** Sleeps on the clock, honouring abort and timeoutMs (the operation then has no effect). */
  private async take(ms: number, op: string, opts: OpOptions): Promise<void> {
    if (opts.timeoutMs !== undefined && ms > opts.timeoutMs) {
      await this.clock.sleep(opts.timeoutMs, opts.signal).catch(() => undefined);
      throw new OperationTimeout(op, opts.timeoutMs);
    }
    try {
      await this.clock.sleep(ms, opts.signal);
    } catch {
      throw new OperationAborted(op);
    }
  }

  private run(name: string, d: SimDomain, mem: GuestMemory, detail: string): void {
    d.state = 'running';
    d.mem = mem;
    d.syncedAt = this.clock.now();
    delete d.acpiOffAt;
    this.emit(name, 'started', detail);
  }

  /** After a restore: a guest that was saved while paused stays paused. */
  private pauseIf(name: string, d: SimDomain, paused: boolean): 'running' | 'paused' {
    if (!paused) return 'running';
    d.state = 'paused';
    this.emit(name, 'suspended', 'Paused');
    return 'paused';
  }

  private stop(name: string, d: SimDomain, detail: string): void {
    d.state = 'shutoff';
    delete d.mem;
    delete d.acpiOffAt;
    this.emit(name, detail === 'Saved' ? 'saved' : 'stopped', detail);
  }

  private emit(name: string, type: DomainEvent['type'], detail: string): void {
    const ev: DomainEvent = { name, type, detail, at: new Date(this.clock.now()) };
    for (const l of this.listeners) l(ev);
  }

  private appendSerial(d: SimDomain, text: string): void {
    const path = d.spec.serialLogPath;
    this.serial.set(path, (this.serial.get(path) ?? '') + text);
  }

  /** Runs the guest model from d.syncedAt to now: serial output, CPU time, power-off. */
  private advanceGuest(name: string, d: SimDomain, now: number): void {
    if (d.state !== 'running' || !d.mem) {
      d.syncedAt = now;
      return;
    }
    const until = d.acpiOffAt !== undefined ? Math.min(now, d.acpiOffAt) : now;
    const delta = Math.max(0, until - d.syncedAt);
    const mem = d.mem;
    mem.guestMs += delta;
    d.cpuTimeNs += delta * 1e6 * 0.1;
    d.syncedAt = until;
    const t = this.timings;
    const task = parseTask(d.spec);
    if (!mem.bannerPrinted && mem.guestMs >= t.bootMs) {
      mem.bannerPrinted = true;
      this.appendSerial(d, `${GUEST_READY_BANNER} uptime=${(t.bootMs / 1000).toFixed(2)}\n`);
    }
    const touchMs = task.touchMiB ? (task.touchMiB / t.touchMiBps) * 1000 : 0;
    const taskStart = t.bootMs + touchMs;
    if (mem.bannerPrinted && task.touchMiB && !mem.touchedPrinted && mem.guestMs >= taskStart) {
      mem.touchedPrinted = true;
      this.appendSerial(d, `TOUCHED ${task.touchMiB} MiB\n`);
    }
    if (mem.guestMs >= taskStart && !mem.done) {
      const steps = Math.floor((mem.guestMs - taskStart) / COUNTER_STEP_MS);
      const countTo = /^count-to:(\d+)$/.exec(task.mode);
      if (task.mode === 'counter') {
        let out = '';
        for (let i = mem.printed + 1; i <= steps; i++) out += `COUNT ${i}\n`;
        mem.printed = Math.max(mem.printed, steps);
        if (out) this.appendSerial(d, out);
      } else if (countTo) {
        const n = Number(countTo[1]);
        let out = '';
        for (let i = mem.printed + 1; i <= Math.min(steps, n); i++) out += `PROGRESS ${i}/${n}\n`;
        mem.printed = Math.max(mem.printed, Math.min(steps, n));
        if (steps > n) {
          out += `RESULT count=${n}\nDESKPOOL-GUEST DONE rc=0\n`;
          mem.done = true;
        }
        if (out) this.appendSerial(d, out);
      } else {
        this.appendSerial(d, 'DESKPOOL-GUEST DONE rc=0\n');
        mem.done = true;
      }
      if (mem.done && task.poweroff) {
        this.stop(name, d, 'Shutdown');
        return;
      }
    }
    if (d.acpiOffAt !== undefined && now >= d.acpiOffAt) {
      this.appendSerial(d, 'DESKPOOL-GUEST POWEROFF\n');
      this.stop(name, d, 'Shutdown');
    }
  }
}

function stateOf(d: SimDomain): DomainState {
  if (d.state === 'shutoff' && d.managedSave) return 'saved';
  return d.state;
}

function parseTask(spec: DomainSpec): GuestTaskModel {
  const cmdline = spec.boot?.cmdline ?? '';
  const arg = (k: string): string | undefined => {
    let v: string | undefined;
    for (const w of cmdline.split(/\s+/)) if (w.startsWith(`deskpool.${k}=`)) v = w.slice(k.length + 10);
    return v;
  };
  return { mode: arg('mode') ?? 'idle', touchMiB: Number(arg('touch') ?? 0) || 0, poweroff: arg('poweroff') === '1' };
}

function assertAbsolute(path: string): void {
  if (!/^\/[^\0]*$/.test(path)) throw new InvalidSpec(`path must be absolute: ${path}`, [{ path: 'path', message: 'must be an absolute path' }]);
}
