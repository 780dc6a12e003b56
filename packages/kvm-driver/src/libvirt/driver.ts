// HypervisorDriver over libvirt's own command-line client, virsh (see README: why virsh).
// Each method reads the domain's state first so repeats are idempotent (changed=false) and
// wrong-state calls fail with InvalidState before libvirt is asked to do anything.
import type {
  CommandRunner,
  DomainEvent,
  DomainSpecInput,
  DomainState,
  DomainStats,
  DomainSummary,
  DomainType,
  EventOptions,
  HostInfo,
  HypervisorDriver,
  MigrateOptions,
  MigrateResult,
  MigrationTarget,
  OpOptions,
  OpResult,
  RestoreFromFileResult,
  SaveToFileResult,
  ShutdownOptions,
  ShutdownResult,
} from '../driver.js';
import { DomainNameSchema, DomainSpecSchema } from '../driver.js';
import {
  DomainNotFound,
  HypervisorError,
  HypervisorFailure,
  InsufficientResources,
  InvalidSpec,
  InvalidState,
  LibvirtDown,
  OperationAborted,
  OperationTimeout,
  classifyVirshError,
} from '../errors.js';
import { LocalCommandRunner } from '../runner.js';
import { migrateLive as migrateLiveImpl } from './migrate.js';
import { parseDominfo, parseDomstats, parseEventLine, parseJobInfo, parseKeyValues, parseList, parseNodeMemory, toDomainState, type DomInfo } from './parse.js';
import { VirshSession } from './session.js';
import { Virsh } from './virsh.js';
import { domainXml, nameFromXml, sizesFromXml, specHash, specHashFromXml } from './xml.js';

export interface LibvirtDriverOptions {
  runner?: CommandRunner;
  /** libvirt URI as seen from where the runner runs. */
  uri?: string;
  /** Domain type reported by hostInfo() (see kvmUsability()). */
  domainType?: DomainType;
  clock?: () => Date;
  /** How often long operations poll libvirt for progress/state. */
  pollIntervalMs?: number;
  /** Memory kept free for the host itself when checking whether a domain fits. */
  hostReserveMiB?: number;
  /** libvirt's directory of managed-save images on the host (qemu driver, system instance). */
  managedSaveDir?: string;
}

/** Where libvirt's system qemu driver keeps managed-save images (<dir>/<name>.save). */
export const DEFAULT_MANAGED_SAVE_DIR = '/var/lib/libvirt/qemu/save';

const DEFAULT_SHUTDOWN_GRACE_MS = 30_000;

export class LibvirtDriver implements HypervisorDriver {
  readonly virsh: Virsh;
  readonly description: string;
  private readonly domainType: DomainType;
  private readonly clock: () => Date;
  private readonly pollMs: number;
  private readonly hostReserveMiB: number;
  private readonly managedSaveDir: string;

  constructor(opts: LibvirtDriverOptions = {}) {
    const runner = opts.runner ?? new LocalCommandRunner();
    this.virsh = new Virsh(runner, opts.uri ?? 'qemu:///system');
    this.description = `libvirt ${this.virsh.uri} (${runner.description})`;
    this.domainType = opts.domainType ?? 'qemu';
    this.clock = opts.clock ?? (() => new Date());
    this.pollMs = opts.pollIntervalMs ?? 200;
    this.hostReserveMiB = opts.hostReserveMiB ?? 256;
    this.managedSaveDir = opts.managedSaveDir ?? DEFAULT_MANAGED_SAVE_DIR;
  }

  // --- reading ---------------------------------------------------------------------------

  async hostInfo(opts: OpOptions = {}): Promise<HostInfo> {
    const [info, mem, host] = await Promise.all([
      this.virsh.run(['nodeinfo'], { operation: 'nodeinfo', ...sig(opts) }),
      this.nodeMemory(opts),
      this.virsh.run(['hostname'], { operation: 'hostname', ...sig(opts) }),
    ]);
    const kv = parseKeyValues(info);
    return { hostname: host.trim(), cpus: Number(kv.get('CPU(s)') ?? 0), memoryMiB: mem.totalMiB, freeMemoryMiB: mem.freeMiB, domainType: this.domainType };
  }

  private async nodeMemory(opts: OpOptions): Promise<{ totalMiB: number; freeMiB: number }> {
    return parseNodeMemory(await this.virsh.run(['nodememstats'], { operation: 'nodememstats', ...sig(opts) }));
  }

  private async freeMemoryMiB(opts: OpOptions): Promise<number> {
    return (await this.nodeMemory(opts)).freeMiB;
  }

  /** Ends the persistent virsh shell; the driver can still be used (it reopens on demand). */
  close(): void {
    this.virsh.close();
  }

  async state(name: string, opts: OpOptions = {}): Promise<DomainState> {
    const info = await this.dominfo(name, 'state', opts);
    return info?.state ?? 'missing';
  }

  async stats(name: string, opts: OpOptions = {}): Promise<DomainStats> {
    const info = await this.requireInfo(name, 'stats', opts);
    const raw = parseDomstats(await this.virsh.run(['domstats', '--raw', name], { operation: 'stats', domain: name, ...sig(opts) }));
    const xml = await this.virsh.run(['dumpxml', name], { operation: 'stats', domain: name, ...sig(opts) });
    const num = (k: string): number | undefined => (raw.has(k) ? Number(raw.get(k)) : undefined);
    const sumOf = (prefix: string, field: string): number | undefined => {
      const count = num(`${prefix}.count`);
      if (!count) return undefined;
      let total = 0;
      for (let i = 0; i < count; i++) total += num(`${prefix}.${i}.${field}`) ?? 0;
      return total;
    };
    const maxVcpus = Number(/<vcpu\b[^>]*>(\d+)<\/vcpu>/.exec(xml)?.[1] ?? info.vcpus);
    const running = info.state === 'running' || info.state === 'paused';
    const memKiB = running ? (num('balloon.current') ?? info.usedMemoryKiB) : (sizesFromXml(xml).memoryKiB ?? info.usedMemoryKiB);
    const rss = num('balloon.rss');
    const stats: DomainStats = {
      name,
      state: info.state,
      vcpus: running ? (num('vcpu.current') ?? info.vcpus) : (sizesFromXml(xml).vcpus ?? info.vcpus),
      maxVcpus,
      memoryMiB: Math.round(memKiB / 1024),
      maxMemoryMiB: Math.round((num('balloon.maximum') ?? info.maxMemoryKiB) / 1024),
      cpuTimeNs: num('cpu.time') ?? 0,
    };
    if (rss !== undefined) stats.rssMiB = Math.round(rss / 1024);
    const br = sumOf('block', 'rd.bytes');
    const bw = sumOf('block', 'wr.bytes');
    const nr = sumOf('net', 'rx.bytes');
    const nt = sumOf('net', 'tx.bytes');
    if (br !== undefined) stats.blockReadBytes = br;
    if (bw !== undefined) stats.blockWriteBytes = bw;
    if (nr !== undefined) stats.netRxBytes = nr;
    if (nt !== undefined) stats.netTxBytes = nt;
    return stats;
  }

  async list(opts: OpOptions = {}): Promise<DomainSummary[]> {
    const out = await this.virsh.run(['list', '--all', '--managed-save'], { operation: 'list', ...sig(opts) });
    return parseList(out);
  }

  // --- definition ------------------------------------------------------------------------

  async define(input: DomainSpecInput, opts: OpOptions = {}): Promise<OpResult> {
    const parsed = DomainSpecSchema.safeParse(input);
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
      throw new InvalidSpec(`invalid domain spec: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues);
    }
    const spec = parsed.data;
    const existing = await this.dominfo(spec.name, 'define', opts);
    if (existing) {
      const xml = await this.virsh.run(['dumpxml', '--inactive', spec.name], { operation: 'define', domain: spec.name, ...sig(opts) });
      const sizes = sizesFromXml(xml);
      // Hot-plug with --config changes the sizes without touching our hash, so compare both.
      if (specHashFromXml(xml) === specHash(spec) && sizes.vcpus === spec.vcpus && sizes.memoryKiB === spec.memoryMiB * 1024) {
        return { changed: false, state: existing.state };
      }
    }
    await this.withTempFile(domainXml(spec), (file) => this.virsh.run(['define', file], { operation: 'define', domain: spec.name, ...sig(opts) }));
    return { changed: true, state: existing?.state ?? 'shutoff' };
  }

  async undefine(name: string, opts: OpOptions = {}): Promise<OpResult> {
    const info = await this.dominfo(name, 'undefine', opts);
    if (!info) return { changed: false, state: 'missing' };
    if (info.state === 'running' || info.state === 'paused') throw new InvalidState(name, info.state, 'undefine');
    await this.virsh.run(['undefine', '--managed-save', '--nvram', name], { operation: 'undefine', domain: name, state: info.state, ...sig(opts) });
    return { changed: true, state: 'missing' };
  }

  // --- power -----------------------------------------------------------------------------

  async start(name: string, opts: OpOptions = {}): Promise<OpResult> {
    const { info, freeMiB } = await this.inspectForStart(name, 'start', opts);
    if (info.state === 'running' || info.state === 'paused') return { changed: false, state: info.state };
    this.ensureMemoryFits(name, info, freeMiB, 'start');
    opts.onProgress?.({ phase: info.state === 'saved' ? 'restoring' : 'booting' });
    const state = await this.startProcess(name, 'start', info.state, opts);
    opts.onProgress?.({ phase: 'done', fraction: 1 });
    return { changed: true, state };
  }

  async shutdown(name: string, opts: ShutdownOptions = {}): Promise<ShutdownResult> {
    const info = await this.requireInfo(name, 'shutdown', opts);
    if (info.state !== 'running' && info.state !== 'paused') return { changed: false, state: info.state, forced: false };
    if (info.state === 'running') {
      await this.virsh.run(['shutdown', '--mode', 'acpi', name], { operation: 'shutdown', domain: name, state: info.state, ...sig(opts) });
      const grace = opts.gracefulTimeoutMs ?? DEFAULT_SHUTDOWN_GRACE_MS;
      const state = await this.waitForState(name, (s) => s !== 'running' && s !== 'paused', grace, 'shutdown', opts.signal);
      if (state !== undefined) return { changed: true, state, forced: false };
    }
    // A paused guest cannot react to the power button; a hung one will not.
    const res = await this.destroy(name, opts);
    return { changed: true, state: res.state, forced: true };
  }

  async destroy(name: string, opts: OpOptions = {}): Promise<OpResult> {
    const info = await this.requireInfo(name, 'destroy', opts);
    if (info.state !== 'running' && info.state !== 'paused' && info.state !== 'crashed') return { changed: false, state: info.state };
    const res = await this.virsh.raw(['destroy', name], { ...sig(opts) });
    if (res.code !== 0) {
      // It may have stopped by itself between our read and the destroy: that is success.
      const now = await this.state(name, opts);
      if (now === 'shutoff' || now === 'saved') return { changed: false, state: now };
      throw classifyVirshError(res.stderr, { operation: 'destroy', domain: name, uri: this.virsh.uri, state: info.state });
    }
    return { changed: true, state: await this.state(name, opts) };
  }

  async pause(name: string, opts: OpOptions = {}): Promise<OpResult> {
    const info = await this.requireInfo(name, 'pause', opts);
    if (info.state === 'paused') return { changed: false, state: 'paused' };
    if (info.state !== 'running') throw new InvalidState(name, info.state, 'pause');
    await this.virsh.run(['suspend', name], { operation: 'pause', domain: name, state: info.state, ...sig(opts) });
    return { changed: true, state: 'paused' };
  }

  async resume(name: string, opts: OpOptions = {}): Promise<OpResult> {
    const info = await this.requireInfo(name, 'resume', opts);
    if (info.state === 'running') return { changed: false, state: 'running' };
    if (info.state !== 'paused') throw new InvalidState(name, info.state, 'resume');
    await this.virsh.run(['resume', name], { operation: 'resume', domain: name, state: info.state, ...sig(opts) });
    return { changed: true, state: 'running' };
  }

  // --- suspend to disk -------------------------------------------------------------------

  async managedSave(name: string, opts: OpOptions = {}): Promise<OpResult> {
    const info = await this.requireInfo(name, 'managedSave', opts);
    if (info.state === 'saved') return { changed: false, state: 'saved' };
    if (info.state !== 'running' && info.state !== 'paused') throw new InvalidState(name, info.state, 'suspend to disk');
    await this.runJob(['managedsave', name], name, 'managedSave', 'saving', info.state, opts);
    // A successful managedsave always leaves the domain shut off with its image.
    return { changed: true, state: 'saved' };
  }

  async restore(name: string, opts: OpOptions = {}): Promise<OpResult> {
    const { info, freeMiB } = await this.inspectForStart(name, 'restore', opts);
    if (info.state === 'running' || info.state === 'paused') return { changed: false, state: info.state };
    if (info.state !== 'saved') throw new InvalidState(name, info.state, 'restore (no saved state; use start to boot it)');
    this.ensureMemoryFits(name, info, freeMiB, 'restore');
    opts.onProgress?.({ phase: 'restoring' });
    const state = await this.startProcess(name, 'restore', info.state, opts);
    opts.onProgress?.({ phase: 'done', fraction: 1 });
    return { changed: true, state };
  }

  async managedSaveImagePath(name: string, opts: OpOptions = {}): Promise<string | undefined> {
    const info = await this.dominfo(name, 'managedSaveImagePath', opts);
    return info?.state === 'saved' ? `${this.managedSaveDir}/${name}.save` : undefined;
  }

  async persist(name: string, opts: OpOptions = {}): Promise<OpResult> {
    const info = await this.requireInfo(name, 'persist', opts);
    if (info.persistent) return { changed: false, state: info.state };
    const xml = await this.virsh.run(['dumpxml', '--inactive', name], { operation: 'persist', domain: name, ...sig(opts) });
    await this.withTempFile(xml, (file) => this.virsh.run(['define', file], { operation: 'persist', domain: name, ...sig(opts) }));
    return { changed: true, state: await this.state(name, opts) };
  }

  async saveToFile(name: string, path: string, opts: OpOptions = {}): Promise<SaveToFileResult> {
    assertAbsolute(path);
    const info = await this.requireInfo(name, 'saveToFile', opts);
    if (info.state !== 'running' && info.state !== 'paused') {
      // A repeat after success: the domain is down and the file holds its state.
      const savedName = await this.savedImageName(path, opts);
      if (savedName === name) return { changed: false, state: info.state, path, bytes: await this.fileSize(path, opts) };
      throw new InvalidState(name, info.state, 'save to file');
    }
    try {
      await this.runJob(['save', name, path], name, 'saveToFile', 'saving', info.state, opts);
    } catch (e) {
      // Never leave a truncated image that a later restore might trust.
      if (e instanceof HypervisorError && (await this.state(name)) !== 'shutoff') await this.virsh.runner.run(['rm', '-f', '--', path]).catch(() => undefined);
      throw e;
    }
    return { changed: true, state: await this.state(name), path, bytes: await this.fileSize(path, opts) };
  }

  async restoreFromFile(path: string, opts: OpOptions = {}): Promise<RestoreFromFileResult> {
    assertAbsolute(path);
    const head = await this.savedImageHead(path, opts);
    const name = head.xml ? nameFromXml(head.xml) : undefined;
    if (!head.xml || !name) throw new InvalidSpec(`${path} is not a saved domain image`, [{ path: 'path', message: 'not a libvirt save image' }]);
    const info = await this.dominfo(name, 'restoreFromFile', opts);
    if (info && (info.state === 'running' || info.state === 'paused')) return { changed: false, state: info.state, name };
    const maxKiB = Number(/<memory\b[^>]*>(\d+)<\/memory>/.exec(head.xml)?.[1] ?? 0);
    this.ensureMemoryFits(name, { maxMemoryKiB: maxKiB }, head.freeMiB, 'restore');
    opts.onProgress?.({ phase: 'restoring' });
    let state: DomainState;
    if (VirshSession.accepts(['restore', path])) {
      // The state it came back in (running, or paused if saved paused), read in the same process.
      const res = await this.virsh.sequence([['restore', path], ['domstate', name]], { long: true, ...sig(opts) });
      if (res.code !== 0) throw classifyVirshError(res.stderr, { operation: 'restoreFromFile', domain: name, uri: this.virsh.uri, state: info?.state ?? 'missing' });
      state = toDomainState(res.stdout.trim().split('\n').pop() ?? '');
    } else {
      await this.virsh.run(['restore', path], { operation: 'restoreFromFile', domain: name, long: true, ...sig(opts) });
      state = await this.state(name, opts);
    }
    opts.onProgress?.({ phase: 'done', fraction: 1 });
    return { changed: true, state, name };
  }

  /**
   * A save image's domain definition (undefined when the file is no save image) and the host's
   * free memory, in one virsh round trip where the path allows it.
   */
  private async savedImageHead(path: string, opts: OpOptions): Promise<{ xml?: string; freeMiB: number }> {
    if (!VirshSession.accepts(['save-image-dumpxml', path])) {
      const res = await this.virsh.raw(['save-image-dumpxml', path], sig(opts));
      if (res.code !== 0) {
        const err = classifyVirshError(res.stderr, { operation: 'save-image-dumpxml', uri: this.virsh.uri });
        if (err instanceof LibvirtDown) throw err;
        return { freeMiB: 0 };
      }
      return { xml: res.stdout, freeMiB: await this.freeMemoryMiB(opts) };
    }
    const res = await this.virsh.sequence([['nodememstats'], ['save-image-dumpxml', path]], sig(opts));
    const at = res.stdout.search(/^<domain\b/m);
    if (at < 0) {
      const err = classifyVirshError(res.stderr, { operation: 'save-image-dumpxml', uri: this.virsh.uri });
      if (err instanceof LibvirtDown) throw err;
      return { freeMiB: 0 };
    }
    return { xml: res.stdout.slice(at), freeMiB: parseNodeMemory(res.stdout.slice(0, at)).freeMiB };
  }

  migrateLive(name: string, target: MigrationTarget, opts: MigrateOptions = {}): Promise<MigrateResult> {
    return migrateLiveImpl(this.virsh, name, target, opts);
  }

  // --- hot-plug --------------------------------------------------------------------------

  async hotplugVcpus(name: string, vcpus: number, opts: OpOptions = {}): Promise<OpResult> {
    const st = await this.stats(name, opts);
    if (!Number.isInteger(vcpus) || vcpus < 1 || vcpus > st.maxVcpus) {
      throw new InvalidSpec(`vcpus must be 1..${st.maxVcpus} for ${name}`, [{ path: 'vcpus', message: `must be an integer in 1..${st.maxVcpus} (maxVcpus)` }]);
    }
    if (st.vcpus === vcpus) return { changed: false, state: st.state };
    const live = st.state === 'running' || st.state === 'paused';
    await this.virsh.run(['setvcpus', name, String(vcpus), ...(live ? ['--live', '--config'] : ['--config'])], { operation: 'hotplugVcpus', domain: name, state: st.state, ...sig(opts) });
    return { changed: true, state: st.state };
  }

  async hotplugMemory(name: string, memoryMiB: number, opts: OpOptions = {}): Promise<OpResult> {
    const st = await this.stats(name, opts);
    if (!Number.isInteger(memoryMiB) || memoryMiB < 16 || memoryMiB > st.maxMemoryMiB) {
      throw new InvalidSpec(`memoryMiB must be 16..${st.maxMemoryMiB} for ${name}`, [{ path: 'memoryMiB', message: `must be an integer in 16..${st.maxMemoryMiB} (maxMemoryMiB)` }]);
    }
    if (st.memoryMiB === memoryMiB) return { changed: false, state: st.state };
    const live = st.state === 'running' || st.state === 'paused';
    await this.virsh.run(['setmem', name, `${memoryMiB}MiB`, ...(live ? ['--live', '--config'] : ['--config'])], { operation: 'hotplugMemory', domain: name, state: st.state, ...sig(opts) });
    return { changed: true, state: st.state };
  }

  // --- events ----------------------------------------------------------------------------

  /**
   * Streams `virsh event --loop` when the runner can stream; otherwise (or while libvirtd is
   * down) falls back to polling `virsh list` and reporting state differences.
   */
  async *events(opts: EventOptions = {}): AsyncIterable<DomainEvent> {
    const signal = opts.signal ?? new AbortController().signal;
    const runner = this.virsh.runner;
    while (!signal.aborted) {
      if (runner.stream) {
        try {
          for await (const line of runner.stream(['virsh', '-q', '-c', this.virsh.uri, 'event', '--loop', '--timestamp', '--event', 'lifecycle'], { signal })) {
            const ev = parseEventLine(line, this.clock);
            if (ev) yield ev;
          }
        } catch {
          /* the stream ended (libvirtd restarted?): poll until it is back, then reconnect */
        }
        if (signal.aborted) return;
        await sleep(1000, signal).catch(() => undefined);
      } else {
        yield* this.pollEvents(signal);
      }
    }
  }

  private async *pollEvents(signal: AbortSignal): AsyncIterable<DomainEvent> {
    let last = new Map<string, DomainState>();
    let first = true;
    while (!signal.aborted) {
      let now: Map<string, DomainState>;
      try {
        now = new Map((await this.list({ signal })).map((d) => [d.name, d.state]));
      } catch {
        await sleep(1000, signal).catch(() => undefined);
        continue;
      }
      if (!first) {
        for (const [name, s] of now) {
          const before = last.get(name);
          if (before === s) continue;
          const type = before === undefined ? 'defined' : transitionEvent(before, s);
          if (type) yield { name, type, detail: 'polled', at: this.clock() };
        }
        for (const name of last.keys()) if (!now.has(name)) yield { name, type: 'undefined', detail: 'polled', at: this.clock() };
      }
      first = false;
      last = now;
      await sleep(this.pollMs * 5, signal).catch(() => undefined);
    }
  }

  // --- helpers ---------------------------------------------------------------------------

  /** dominfo, or undefined for an unknown domain. */
  private async dominfo(name: string, operation: string, opts: OpOptions): Promise<DomInfo | undefined> {
    assertDomainName(name);
    const res = await this.virsh.raw(['dominfo', name], sig(opts));
    if (res.code === 0) return parseDominfo(res.stdout);
    const err = classifyVirshError(res.stderr, { operation, domain: name, uri: this.virsh.uri });
    if (err instanceof DomainNotFound) return undefined;
    throw err;
  }

  /**
   * The domain's info and the host's free memory in one virsh round trip: what start and restore
   * must know before asking QEMU, read together because each round trip is most of the driver's
   * own cost in those operations.
   */
  private async inspectForStart(name: string, operation: string, opts: OpOptions): Promise<{ info: DomInfo; freeMiB: number }> {
    assertDomainName(name);
    const res = await this.virsh.sequence([['nodememstats'], ['dominfo', name]], sig(opts));
    if (res.code !== 0) throw classifyVirshError(res.stderr, { operation, domain: name, uri: this.virsh.uri });
    const marker = res.stdout.search(/^Id:/m);
    if (marker < 0) throw new DomainNotFound(name);
    return { info: parseDominfo(res.stdout.slice(marker)), freeMiB: parseNodeMemory(res.stdout.slice(0, marker)).freeMiB };
  }

  /**
   * `virsh start` as its own process (a libvirt job), reading the state it left in the same
   * process and connection: a guest saved while paused comes back paused.
   */
  private async startProcess(name: string, operation: string, state: DomainState, opts: OpOptions): Promise<DomainState> {
    const res = await this.virsh.sequence([['start', name], ['domstate', name]], { long: true, ...sig(opts) });
    if (res.code !== 0) throw classifyVirshError(res.stderr, { operation, domain: name, uri: this.virsh.uri, state });
    const last = res.stdout.trim().split('\n').pop() ?? '';
    return toDomainState(last);
  }

  private async requireInfo(name: string, operation: string, opts: OpOptions): Promise<DomInfo> {
    const info = await this.dominfo(name, operation, opts);
    if (!info) throw new DomainNotFound(name);
    return info;
  }

  /**
   * Checks the domain's memory against what the host can give before asking QEMU, which under
   * memory overcommit may start and be killed later instead of failing cleanly.
   */
  private ensureMemoryFits(name: string, info: Pick<DomInfo, 'maxMemoryKiB'>, freeMiB: number, operation: string): void {
    const needMiB = Math.ceil(info.maxMemoryKiB / 1024);
    if (needMiB + this.hostReserveMiB > freeMiB) {
      throw new InsufficientResources('memory', `cannot ${operation} ${name}: it needs ${needMiB} MiB, the host has ${freeMiB} MiB free (keeping ${this.hostReserveMiB} MiB for itself)`);
    }
  }

  /**
   * Runs a virsh command that is a libvirt job (save, managedsave): reports progress from
   * domjobinfo while it runs, and aborts the job (domjobabort) when the signal fires; killing
   * the virsh client would not stop the job.
   */
  private async runJob(args: string[], name: string, operation: string, phase: string, state: DomainState, opts: OpOptions): Promise<void> {
    if (opts.signal?.aborted) throw new OperationAborted(operation);
    opts.onProgress?.({ phase, fraction: 0 });
    let finished = false;
    let aborted = false;
    let timedOut = false;
    const abortJob = (): void => {
      void this.virsh.raw(['domjobabort', name]).catch(() => undefined);
    };
    const onAbort = (): void => {
      aborted = true;
      abortJob();
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const timer = opts.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          abortJob();
        }, opts.timeoutMs)
      : undefined;
    // Woken when the job ends, so the caller does not wait out a poll interval after it.
    const pollerStop = new AbortController();
    const poller = opts.onProgress
      ? (async () => {
          while (!finished) {
            await sleep(this.pollMs * 2, pollerStop.signal).catch(() => undefined);
            if (finished) break;
            const r = await this.virsh.raw(['domjobinfo', '--rawstats', name]).catch(() => undefined);
            const p = r && r.code === 0 ? parseJobInfo(r.stdout, phase) : undefined;
            if (p && !finished) opts.onProgress?.(p);
          }
        })()
      : Promise.resolve();
    try {
      const res = await this.virsh.raw(args, { timeoutMs: (opts.timeoutMs ?? 0) + 600_000, long: true });
      if (res.code !== 0) {
        if (aborted) throw new OperationAborted(operation, res.stderr);
        if (timedOut) throw new OperationTimeout(operation, opts.timeoutMs ?? 0, res.stderr);
        throw classifyVirshError(res.stderr, { operation, domain: name, uri: this.virsh.uri, state });
      }
      opts.onProgress?.({ phase: 'done', fraction: 1 });
    } finally {
      finished = true;
      pollerStop.abort();
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      await poller;
    }
  }

  private async waitForState(name: string, done: (s: DomainState) => boolean, timeoutMs: number, operation: string, signal?: AbortSignal): Promise<DomainState | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (signal?.aborted) throw new OperationAborted(operation);
      const s = await this.state(name, signal ? { signal } : {});
      if (done(s)) return s;
      if (Date.now() >= deadline) return undefined;
      await sleep(this.pollMs, signal).catch(() => undefined);
    }
  }

  /**
   * virsh reads XML only from a file; the file is written through the runner (tee reads its
   * stdin, which /dev/stdin on a socket cannot), so this works on a remote host as well.
   */
  private async withTempFile<T>(content: string, fn: (path: string) => Promise<T>): Promise<T> {
    const runner = this.virsh.runner;
    const made = await runner.run(['mktemp', '/tmp/deskpool-xml.XXXXXXXX']);
    if (made.code !== 0) throw new HypervisorFailure('mktemp', made.stderr);
    const path = made.stdout.trim();
    try {
      const wrote = await runner.run(['tee', '--', path], { stdin: content });
      if (wrote.code !== 0) throw new HypervisorFailure('write domain XML', wrote.stderr);
      return await fn(path);
    } finally {
      await runner.run(['rm', '-f', '--', path]).catch(() => undefined);
    }
  }

  private async savedImageName(path: string, opts: OpOptions): Promise<string | undefined> {
    const res = await this.virsh.raw(['save-image-dumpxml', path], sig(opts));
    if (res.code !== 0) {
      const err = classifyVirshError(res.stderr, { operation: 'save-image-dumpxml', uri: this.virsh.uri });
      if (err instanceof LibvirtDown) throw err;
      return undefined;
    }
    return nameFromXml(res.stdout);
  }

  private async fileSize(path: string, opts: OpOptions): Promise<number> {
    const res = await this.virsh.runner.run(['stat', '-c', '%s', '--', path], sig(opts));
    return res.code === 0 ? Number(res.stdout.trim()) : 0;
  }
}

function transitionEvent(before: DomainState, after: DomainState): DomainEvent['type'] | undefined {
  if (after === 'running') return before === 'paused' ? 'resumed' : 'started';
  if (after === 'paused') return 'suspended';
  if (after === 'saved') return 'saved';
  if (after === 'crashed') return 'crashed';
  if (after === 'shutoff') return 'stopped';
  return undefined;
}

function sig(opts: OpOptions): { signal?: AbortSignal; timeoutMs?: number } {
  return { ...(opts.signal ? { signal: opts.signal } : {}), ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}) };
}

function assertAbsolute(path: string): void {
  if (!/^\/[^\0]*$/.test(path)) throw new InvalidSpec(`path must be absolute: ${path}`, [{ path: 'path', message: 'must be an absolute path' }]);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new OperationAborted('wait'));
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(new OperationAborted('wait'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function assertDomainName(name: string): void {
  const parsedName = DomainNameSchema.safeParse(name);
  if (!parsedName.success) throw new InvalidSpec(`invalid domain name ${JSON.stringify(name)}`, [{ path: 'name', message: parsedName.error.issues[0]?.message ?? 'invalid' }]);
}
