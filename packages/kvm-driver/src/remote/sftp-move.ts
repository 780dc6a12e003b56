// Moves a saved-state file between hosts: streams it from the source host to a temporary
// name on the target (SFTP when a side is remote) while the source host hashes it, then has
// the target host hash what landed and renames it into place only when the two agree. The
// source hash runs as a process on that host beside the copy rather than inline in the stream:
// inline, it shared this thread with the SFTP packet work and cost ~1 s per 330 MB here. The source file is
// kept unless the caller asks otherwise: saved state is deleted only after a restore from the
// copy is confirmed (DESIGN invariant 2).
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import type { Progress } from '../driver.js';
import { HypervisorError, HypervisorFailure, InsufficientResources, InvalidSpec, OperationAborted, OperationTimeout } from '../errors.js';
import { ChecksumMismatch } from './errors.js';
import { partialPath, type HostFiles } from './host-files.js';

export interface FileOnHost {
  files: HostFiles;
  path: string;
}

export interface MoveStateFileOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
  onProgress?: (p: Progress) => void;
  /** Checksum recorded when the state was saved: the source must still match it. */
  expectedSha256?: string;
  /** Free space to leave on the target beyond the file itself. Default 64 MiB. */
  reserveBytes?: number;
  /** Delete the source after a verified arrival. Default false (see invariant 2). */
  removeSource?: boolean;
}

export interface MoveStateFileResult {
  /** false when the target already held an identical file (a repeat). */
  changed: boolean;
  bytes: number;
  sha256: string;
}

const PathSchema = z.string().regex(/^\/[^\0]*[^/]$/, 'absolute path of a file');
const OptionsSchema = z.object({
  expectedSha256: z.string().regex(/^[0-9a-f]{64}$/, 'lower-case hex sha256').optional(),
  reserveBytes: z.number().int().min(0).optional(),
  timeoutMs: z.number().int().min(1).optional(),
});

const PROGRESS_STEP = 4 * 1024 * 1024;

export async function moveStateFile(from: FileOnHost, to: FileOnHost, opts: MoveStateFileOptions = {}): Promise<MoveStateFileResult> {
  validate(from, to, opts);
  const what = `move ${from.path} (${from.files.description}) to ${to.path} (${to.files.description})`;
  const signals = [opts.signal, opts.timeoutMs ? AbortSignal.timeout(opts.timeoutMs) : undefined].filter((s): s is AbortSignal => !!s);
  const signal = signals.length ? AbortSignal.any(signals) : undefined;
  const stopped = (cause?: unknown): HypervisorError =>
    opts.signal?.aborted || !opts.timeoutMs ? new OperationAborted(what, cause instanceof Error ? cause.message : undefined) : new OperationTimeout(what, opts.timeoutMs);
  if (signal?.aborted) throw stopped();

  opts.onProgress?.({ phase: 'checking', fraction: 0 });
  const size = await from.files.size(from.path);
  if (size === undefined) throw new InvalidSpec(`${from.path} does not exist on ${from.files.description}`, [{ path: 'from.path', message: 'no such file' }]);

  // A repeat after success finds the identical file already in place.
  const existing = await to.files.size(to.path);
  if (existing === size) {
    const [there, here] = await Promise.all([to.files.sha256(to.path, signal), from.files.sha256(from.path, signal)]);
    if (there === here) {
      if (opts.expectedSha256 && here !== opts.expectedSha256) throw new ChecksumMismatch(from.path, opts.expectedSha256, here, from.files.description);
      if (opts.removeSource) await from.files.remove(from.path);
      opts.onProgress?.({ phase: 'done', bytesDone: size, bytesTotal: size, fraction: 1 });
      return { changed: false, bytes: size, sha256: here };
    }
  }

  const dir = to.path.slice(0, to.path.lastIndexOf('/')) || '/';
  // A PC that never received a state file has no directory for them yet.
  await to.files.ensureDir(dir);
  const reserve = opts.reserveBytes ?? 64 * 1024 * 1024;
  const free = await to.files.freeBytes(dir);
  if (free < size + reserve) {
    throw new InsufficientResources('disk', `${to.files.description} has ${mib(free)} MiB free in ${dir}; moving ${from.path} needs ${mib(size)} MiB plus ${mib(reserve)} MiB reserve`);
  }

  const tmp = partialPath(to.path);
  let done = 0;
  let reported = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      done += chunk.length;
      if (done - reported >= PROGRESS_STEP) {
        reported = done;
        opts.onProgress?.({ phase: 'copying', bytesDone: done, bytesTotal: size, fraction: size ? done / size : 1 });
      }
      cb(null, chunk);
    },
  });
  try {
    opts.onProgress?.({ phase: 'copying', bytesDone: 0, bytesTotal: size, fraction: 0 });
    const source = await from.files.openRead(from.path);
    const sink = await to.files.openWrite(tmp);
    // A state file is never written while it is moved; if it were, the two hashes (of the file
    // as read by the hasher and as landed on the target) would differ and the move fails.
    const hashing = from.files.sha256(from.path, signal);
    hashing.catch(() => undefined); // awaited below; a copy failure must not leave it unhandled
    await pipeline(source, meter, sink, signal ? { signal } : {});
    if (done !== size) throw new HypervisorFailure(what, `read ${done} bytes, expected ${size}: the source changed during the move`);
    const sent = await hashing;
    if (opts.expectedSha256 && sent !== opts.expectedSha256) throw new ChecksumMismatch(from.path, opts.expectedSha256, sent, from.files.description);
    opts.onProgress?.({ phase: 'verifying', bytesDone: size, bytesTotal: size, fraction: 1 });
    const landed = await to.files.sha256(tmp, signal);
    if (landed !== sent) throw new ChecksumMismatch(to.path, sent, landed, to.files.description);
    await to.files.rename(tmp, to.path);
    if (opts.removeSource) await from.files.remove(from.path);
    opts.onProgress?.({ phase: 'done', bytesDone: size, bytesTotal: size, fraction: 1 });
    return { changed: true, bytes: size, sha256: sent };
  } catch (e) {
    // Free space is read before the partial file is removed: SFTP reports a full disk only as
    // "Failure", and the partial file's blocks are what filled it.
    const left = signal?.aborted || e instanceof HypervisorError ? undefined : await to.files.freeBytes(dir).catch(() => undefined);
    await to.files.remove(tmp).catch(() => undefined);
    if (signal?.aborted) throw stopped(e);
    if (e instanceof HypervisorError) throw e;
    // The space check raced with another writer, or the file system filled up meanwhile.
    if (/ENOSPC|No space|quota/i.test(String((e as Error)?.message)) || (left !== undefined && left < 1024 * 1024)) {
      throw new InsufficientResources('disk', `${to.files.description} ran out of disk space in ${dir} while receiving ${from.path}`, String((e as Error)?.message ?? e));
    }
    throw new HypervisorFailure(what, String((e as Error)?.message ?? e));
  }
}

function validate(from: FileOnHost, to: FileOnHost, opts: MoveStateFileOptions): void {
  const issues: { path: string; message: string }[] = [];
  for (const [key, r] of [
    ['from.path', PathSchema.safeParse(from.path)],
    ['to.path', PathSchema.safeParse(to.path)],
    ['options', OptionsSchema.safeParse({ expectedSha256: opts.expectedSha256, reserveBytes: opts.reserveBytes, timeoutMs: opts.timeoutMs })],
  ] as const) {
    for (const i of r.error?.issues ?? []) issues.push({ path: [key, ...i.path.map(String)].join('.'), message: i.message });
  }
  if (from.files === to.files && from.path === to.path) issues.push({ path: 'to.path', message: 'source and target are the same file' });
  if (issues.length) throw new InvalidSpec(`invalid move: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues);
}

function mib(bytes: number): number {
  return Math.floor(bytes / (1024 * 1024));
}
