// The tiny test guest (guest/build.sh): where its files are, how to ask it to do things on the
// kernel command line, and how to read what it printed on its serial console.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { z } from 'zod';
import type { DomainSpecInput, DomainType } from './driver.js';
import { OperationAborted, OperationTimeout } from './errors.js';

const execFileP = promisify(execFile);

/** The guest prints this on ttyS0 once its /init runs. */
export const GUEST_READY_BANNER = 'DESKPOOL-GUEST READY';

export interface GuestImage {
  /** Uncompressed kernel (PVH boot; fast under TCG). */
  kernel: string;
  initrd: string;
}

/** guest/ at the repository root (src/ and dist/ are both three levels below it). */
export function guestDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.DESKPOOL_GUEST_DIR ?? fileURLToPath(new URL('../../../guest/', import.meta.url));
}

export function guestImage(env: NodeJS.ProcessEnv = process.env): GuestImage {
  const dir = guestDir(env).replace(/\/$/, '');
  return { kernel: `${dir}/build/vmlinux`, initrd: `${dir}/build/initramfs.cpio.gz` };
}

/** Builds the guest if needed (quick when already built) and returns its files. */
export async function ensureGuestImage(env: NodeJS.ProcessEnv = process.env): Promise<GuestImage> {
  const dir = guestDir(env).replace(/\/$/, '');
  await execFileP('bash', [`${dir}/build.sh`], { env, maxBuffer: 16 * 1024 * 1024 });
  return guestImage(env);
}

export const GuestTaskSchema = z.object({
  mode: z.union([z.literal('counter'), z.literal('idle'), z.string().regex(/^count-to:\d{1,9}$/)]).default('idle'),
  /** Fill this much guest memory first (MiB), so a snapshot has real data to carry. */
  touchMiB: z.number().int().min(1).max(65536).optional(),
  /** Shell script run instead of the mode. */
  script: z.string().max(2048).optional(),
  poweroffWhenDone: z.boolean().default(false),
});
export type GuestTask = z.input<typeof GuestTaskSchema>;

export function guestCmdline(task: GuestTask = {}): string {
  const t = GuestTaskSchema.parse(task);
  const parts = ['console=ttyS0', 'quiet', `deskpool.mode=${t.mode}`];
  if (t.touchMiB) parts.push(`deskpool.touch=${t.touchMiB}`);
  if (t.script !== undefined) parts.push(`deskpool.cmd=${Buffer.from(t.script, 'utf8').toString('base64')}`);
  if (t.poweroffWhenDone) parts.push('deskpool.poweroff=1');
  return parts.join(' ');
}

/** A DomainSpec for the tiny guest. */
export function guestDomainSpec(p: {
  name: string;
  serialLogPath: string;
  domainType?: DomainType;
  memoryMiB?: number;
  maxMemoryMiB?: number;
  vcpus?: number;
  maxVcpus?: number;
  task?: GuestTask;
  image?: GuestImage;
}): DomainSpecInput {
  const image = p.image ?? guestImage();
  const memoryMiB = p.memoryMiB ?? 128;
  const vcpus = p.vcpus ?? 1;
  return {
    name: p.name,
    domainType: p.domainType ?? 'qemu',
    vcpus,
    maxVcpus: p.maxVcpus ?? vcpus,
    memoryMiB,
    maxMemoryMiB: p.maxMemoryMiB ?? memoryMiB,
    serialLogPath: p.serialLogPath,
    boot: { kernel: image.kernel, initrd: image.initrd, cmdline: guestCmdline(p.task) },
  };
}

/** What the guest printed so far ('' when the log does not exist yet). */
export async function readSerialLog(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw e;
  }
}

/** Numbers of all "COUNT n" lines printed by the guest's counter mode, in order. */
export function counterValues(serial: string): number[] {
  return [...serial.matchAll(/^COUNT (\d+)\r?$/gm)].map((m) => Number(m[1]));
}

/**
 * Waits until the serial log matches `pattern` (checked against the whole log, or the part
 * after `fromOffset` characters). Resolves with the log text at that moment.
 */
export async function waitForSerial(
  path: string,
  pattern: RegExp | ((log: string) => boolean),
  opts: { timeoutMs?: number; fromOffset?: number; signal?: AbortSignal; intervalMs?: number } = {},
): Promise<string> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  const test = typeof pattern === 'function' ? pattern : (s: string) => pattern.test(s);
  for (;;) {
    if (opts.signal?.aborted) throw new OperationAborted(`waiting for ${path}`);
    const log = await readSerialLog(path);
    if (test(log.slice(opts.fromOffset ?? 0))) return log;
    if (Date.now() > deadline) {
      const tail = log.slice(-400);
      throw new OperationTimeout(`waiting for ${String(pattern)} in ${path}`, timeoutMs, tail);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 100));
  }
}
