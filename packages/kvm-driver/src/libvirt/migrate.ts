// Live migration between libvirt hosts (pre-copy, optionally switching to post-copy), with
// progress from `virsh domjobinfo` and abort through `virsh domjobabort`. LibvirtDriver
// delegates migrateLive() here.
//
// The migration is driven by the virsh client where the runner runs, connected to both the
// source (virsh.uri) and the target (target.uri, as seen from there); libvirt's default
// (non-peer-to-peer) mode, so the source daemon needs no route to the target's libvirtd.
import { z } from 'zod';
import type { MigrateOptions, MigrateResult, MigrationTarget, Progress } from '../driver.js';
import { DomainNameSchema } from '../driver.js';
import { DomainNotFound, HypervisorError, InvalidSpec, InvalidState, MigrationFailed, OperationAborted, OperationTimeout, classifyVirshError } from '../errors.js';
import { parseDominfo, parseKeyValues } from './parse.js';
import { Virsh } from './virsh.js';

const POLL_MS = 250;
/** Longest we wait for `virsh migrate` to return after an abort before giving up on it. */
const ABORT_SETTLE_MS = 60_000;

const UriSchema = z.string().regex(/^[a-z][a-z0-9+.-]*:\/\/[^\s]*$/i, 'a URI such as qemu+tcp://10.0.0.2/system');
const MigrationTargetSchema = z.object({
  uri: UriSchema,
  migrateUri: z.string().regex(/^(tcp|rdma|unix):\/\/[^\s]+$/, 'a data URI such as tcp://10.0.0.2').optional(),
});
const MigrateOptionsSchema = z.object({
  postCopy: z.boolean().optional(),
  bandwidthMiBps: z.number().int().min(1).max(1_000_000).optional(),
  copyStorage: z.boolean().optional(),
  timeoutMs: z.number().int().min(1).optional(),
});

/** Phase names reported through onProgress. */
export type MigrationPhase = 'preparing' | 'precopy' | 'postcopy' | 'done';

/** One `virsh domjobinfo --rawstats` reading. */
export interface MigrationJobStats {
  active: boolean;
  /** Job type word/number as virsh printed it. */
  jobType?: string;
  timeElapsedMs?: number;
  dataTotal?: number;
  dataProcessed?: number;
  dataRemaining?: number;
  memoryIteration?: number;
  downtimeMs?: number;
}

/** Parses `virsh domjobinfo [--completed] --rawstats` (pure). */
export function parseMigrationJob(text: string): MigrationJobStats {
  const kv = parseKeyValues(text);
  const jobType = kv.get('Job type') ?? kv.get('type');
  const n = (k: string): number | undefined => {
    const v = kv.get(k);
    return v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined;
  };
  const stats: MigrationJobStats = { active: jobType !== undefined && jobType !== '0' && !/none/i.test(jobType) };
  if (jobType !== undefined) stats.jobType = jobType;
  const set = <K extends keyof MigrationJobStats>(k: K, v: MigrationJobStats[K] | undefined): void => {
    if (v !== undefined) stats[k] = v;
  };
  set('timeElapsedMs', n('time_elapsed'));
  set('dataTotal', n('data_total') ?? n('memory_total'));
  set('dataProcessed', n('data_processed') ?? n('memory_processed'));
  set('dataRemaining', n('data_remaining') ?? n('memory_remaining'));
  set('memoryIteration', n('memory_iteration'));
  set('downtimeMs', n('downtime'));
  return stats;
}

/** Progress for a running job; the total is unknown (0) for the first moments. */
export function migrationProgress(stats: MigrationJobStats, phase: MigrationPhase): Progress {
  const p: Progress = { phase };
  if (stats.dataProcessed !== undefined) p.bytesDone = stats.dataProcessed;
  if (stats.dataTotal) {
    p.bytesTotal = stats.dataTotal;
    // Pre-copy resends dirtied pages, so processed can exceed total; remaining is the honest gauge.
    const remaining = stats.dataRemaining ?? Math.max(0, stats.dataTotal - (stats.dataProcessed ?? 0));
    p.fraction = Math.min(1, Math.max(0, 1 - remaining / stats.dataTotal));
  }
  return p;
}

/** The virsh argv (after `virsh -c <source>`) for one migration. Pure. */
export function migrateArgs(name: string, target: MigrationTarget, opts: Pick<MigrateOptions, 'postCopy' | 'bandwidthMiBps' | 'copyStorage'>): string[] {
  const args = ['migrate', '--live', '--persistent', '--undefinesource'];
  if (opts.postCopy) args.push('--postcopy');
  if (opts.bandwidthMiBps !== undefined) args.push('--bandwidth', String(opts.bandwidthMiBps));
  if (opts.copyStorage) args.push('--copy-storage-all');
  args.push('--domain', name, '--desturi', target.uri);
  if (target.migrateUri) args.push('--migrateuri', target.migrateUri);
  return args;
}

export async function migrateLive(virsh: Virsh, name: string, target: MigrationTarget, opts: MigrateOptions = {}): Promise<MigrateResult> {
  validate(name, target, opts);
  // A few one-off queries: no persistent virsh session for the target.
  const targetVirsh = new Virsh(virsh.runner, target.uri, false);
  const signal = opts.signal;
  const started = Date.now();
  if (signal?.aborted) throw new OperationAborted(`migrate ${name}`);

  const source = await virsh.raw(['dominfo', name], { ...(signal ? { signal } : {}) });
  if (source.code !== 0) {
    const err = classifyVirshError(source.stderr, { operation: 'dominfo', domain: name, uri: virsh.uri });
    if (!(err instanceof DomainNotFound)) throw err;
    // A repeat after success: it already runs on the target and is gone from here.
    const there = await domainState(targetVirsh, name, signal);
    if (there === 'running' || there === 'paused') return { changed: false, state: there };
    throw err;
  }
  const info = parseDominfo(source.stdout);
  if (info.state !== 'running' && info.state !== 'paused') throw new InvalidState(name, info.state, 'live-migrate');

  opts.onProgress?.({ phase: 'preparing', fraction: 0 });
  let phase: MigrationPhase = 'precopy';
  let finished = false;
  let stopReason: 'aborted' | 'timeout' | undefined;
  let postCopyRequested = false;

  const abortJob = async (): Promise<void> => {
    // Killing the virsh client would not stop the job; domjobabort does, and the source resumes.
    // Its own process (long: true), never queued behind a slow query in the shared virsh session.
    await virsh.raw(['domjobabort', name], { timeoutMs: 30_000, long: true }).catch(() => undefined);
  };
  const onAbort = (): void => {
    stopReason ??= 'aborted';
    void abortJob();
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  const timer = opts.timeoutMs
    ? setTimeout(() => {
        stopReason ??= 'timeout';
        void abortJob();
      }, opts.timeoutMs)
    : undefined;

  let lastSeen: MigrationJobStats | undefined;
  // Woken when the migration ends, so the caller does not wait out a poll interval after it.
  let wakePoller = (): void => undefined;
  const poller = (async () => {
    while (!finished) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, POLL_MS);
        wakePoller = () => {
          clearTimeout(t);
          resolve();
        };
      });
      if (finished) break;
      // Short timeout: a query stuck behind a busy daemon must not silence progress for the whole job.
      const r = await virsh.raw(['domjobinfo', '--rawstats', name], { timeoutMs: 5_000 }).catch(() => undefined);
      if (!r || r.code !== 0 || finished) continue;
      const stats = parseMigrationJob(r.stdout);
      if (!stats.active) continue;
      lastSeen = stats;
      if (opts.postCopy && !postCopyRequested && (stats.memoryIteration ?? 0) >= 1) {
        // First full pass done: switch so the guest runs on the target and pulls the rest on demand.
        postCopyRequested = true;
        const sw = await virsh.raw(['migrate-postcopy', name], { timeoutMs: 30_000, long: true }).catch(() => undefined);
        if (sw && sw.code === 0) phase = 'postcopy';
      }
      opts.onProgress?.(migrationProgress(stats, phase));
    }
  })();

  let res;
  try {
    res = await virsh.raw(migrateArgs(name, target, opts), {
      // The job itself is bounded by opts.timeoutMs (domjobabort); this only guards a stuck client.
      timeoutMs: (opts.timeoutMs ?? 24 * 3600_000) + ABORT_SETTLE_MS,
    });
  } finally {
    finished = true;
    wakePoller();
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
    await poller;
  }

  if (res.code !== 0) {
    if (stopReason === 'aborted') throw new OperationAborted(`migrate ${name}`, res.stderr);
    if (stopReason === 'timeout') throw new OperationTimeout(`migrate ${name}`, opts.timeoutMs ?? 0, res.stderr);
    const err = classifyVirshError(res.stderr, { operation: 'migrate', domain: name, uri: virsh.uri, state: info.state });
    if (err instanceof HypervisorError && !(err instanceof MigrationFailed) && err.code !== 'INSUFFICIENT_RESOURCES' && err.code !== 'LIBVIRT_DOWN' && err.code !== 'HOST_UNREACHABLE') {
      throw new MigrationFailed(name, err.message, res.stderr);
    }
    throw err;
  }

  if (!opts.jobStats) {
    // A live migration keeps the guest's run state; what was sent is known from the last reading.
    const state = info.state === 'paused' ? 'paused' : 'running';
    opts.onProgress?.({ phase: 'done', fraction: 1, ...(lastSeen?.dataProcessed !== undefined ? { bytesDone: lastSeen.dataProcessed } : {}) });
    return { changed: true, state, durationMs: Date.now() - started, ...(lastSeen?.dataProcessed !== undefined ? { bytesTransferred: lastSeen.dataProcessed } : {}) };
  }
  // Only the target can report the finished job; its state comes in the same virsh process.
  const done = await targetVirsh.sequence([['domjobinfo', '--completed', '--rawstats', name], ['domstate', name]], { timeoutMs: 30_000 }).catch(() => undefined);
  const lines = done?.stdout.trim().split('\n') ?? [];
  const last = lines.at(-1)?.trim();
  const stats = done && done.code === 0 ? parseMigrationJob(lines.slice(0, -1).join('\n')) : { active: false };
  const state = last === 'paused' ? 'paused' : last === 'running' ? 'running' : ((await domainState(targetVirsh, name)) ?? 'running');
  opts.onProgress?.({ phase: 'done', fraction: 1, ...(stats.dataProcessed !== undefined ? { bytesDone: stats.dataProcessed } : {}), ...(stats.dataTotal ? { bytesTotal: stats.dataTotal } : {}) });
  const result: MigrateResult = { changed: true, state, durationMs: stats.timeElapsedMs ?? Date.now() - started };
  if (stats.downtimeMs !== undefined) result.downtimeMs = stats.downtimeMs;
  if (stats.dataProcessed !== undefined) result.bytesTransferred = stats.dataProcessed;
  return result;
}

function validate(name: string, target: MigrationTarget, opts: MigrateOptions): void {
  const issues: { path: string; message: string }[] = [];
  const collect = (prefix: string, r: { success: boolean; error?: z.ZodError }): void => {
    for (const i of r.error?.issues ?? []) issues.push({ path: [prefix, ...i.path.map(String)].filter(Boolean).join('.'), message: i.message });
  };
  collect('name', DomainNameSchema.safeParse(name));
  collect('target', MigrationTargetSchema.safeParse(target));
  collect('', MigrateOptionsSchema.safeParse({ postCopy: opts.postCopy, bandwidthMiBps: opts.bandwidthMiBps, copyStorage: opts.copyStorage, timeoutMs: opts.timeoutMs }));
  if (issues.length) throw new InvalidSpec(`invalid migration request: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues);
}

async function domainState(v: Virsh, name: string, signal?: AbortSignal): Promise<'running' | 'paused' | 'shutoff' | undefined> {
  const r = await v.raw(['domstate', name], { timeoutMs: 30_000, ...(signal ? { signal } : {}) }).catch(() => undefined);
  if (!r || r.code !== 0) return undefined;
  const s = r.stdout.trim();
  if (s === 'running') return 'running';
  if (s === 'paused') return 'paused';
  return 'shutoff';
}
