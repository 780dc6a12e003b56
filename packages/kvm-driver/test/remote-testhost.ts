// Shared set-up for the remote tests: the second libvirt host (scripts/testhost.sh), SSH
// access to it, and tiny counter guests with unique names and serial logs in a temp dir.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { LibvirtDriver } from '../src/libvirt/driver.js';
import { ensureGuestImage, guestDomainSpec, waitForSerial, counterValues, readSerialLog, type GuestImage } from '../src/guest.js';
import type { DomainSpecInput } from '../src/driver.js';
import type { SshTargetInput } from '../src/remote/ssh-connection.js';

export const execFileP = promisify(execFile);
const repo = fileURLToPath(new URL('../../../', import.meta.url));

/** The remote tests' own second host (other test files use other names and addresses). */
export const TESTHOST = 'dpth1';
export const TESTHOST_ADDR = '10.77.0.2';

export interface TestHost {
  name: string;
  addr: string;
  rootAddr: string;
  libvirtUri: string;
  sshKeyPath: string;
  knownHostsPath: string;
  fingerprint: string;
  mountNs: string;
  ssh: SshTargetInput;
}

/** Brings the host up (idempotent) and reads its facts. Fails loudly when it cannot. */
export async function testHost(): Promise<TestHost> {
  const { stdout } = await execFileP('bash', [join(repo, 'scripts/testhost.sh'), 'up', TESTHOST, TESTHOST_ADDR]).catch((e: Error & { stderr?: string }) => {
    throw new Error(`scripts/testhost.sh up ${TESTHOST} failed (run the tests as root with libvirt installed): ${e.stderr ?? e.message}`);
  });
  const kv = new Map(stdout.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const));
  const get = (k: string): string => {
    const v = kv.get(k);
    if (!v) throw new Error(`testhost.sh printed no ${k}`);
    return v;
  };
  const h = {
    name: get('name'),
    addr: get('addr'),
    rootAddr: get('root_addr'),
    libvirtUri: get('libvirt_uri'),
    sshKeyPath: get('ssh_key'),
    knownHostsPath: get('known_hosts'),
    fingerprint: get('host_fingerprint'),
    mountNs: get('mount_ns'),
  };
  return { ...h, ssh: { host: h.addr, username: 'root', privateKeyPath: h.sshKeyPath, knownHostsPath: h.knownHostsPath, connectTimeoutMs: 5000 } };
}

export interface GuestKit {
  image: GuestImage;
  dir: string;
  name(tag: string): string;
  spec(name: string, memoryMiB?: number): DomainSpecInput;
  serialPath(name: string): string;
  /** Highest COUNT the guest has printed so far. */
  lastCount(name: string): Promise<number>;
  /** Waits until the guest prints a COUNT above `after`. */
  waitCountAbove(name: string, after: number, timeoutMs?: number): Promise<number>;
  cleanup(drivers: LibvirtDriver[]): Promise<void>;
}

export async function guestKit(prefix: string): Promise<GuestKit> {
  const image = await ensureGuestImage();
  // Serial logs live outside the private libvirt directories, so both hosts see the same path.
  const dir = await mkdtemp(join(tmpdir(), `${prefix}-`));
  const names: string[] = [];
  const serialPath = (name: string): string => join(dir, `${name}.log`);
  const lastCount = async (name: string): Promise<number> => Math.max(0, ...counterValues(await readSerialLog(serialPath(name))));
  return {
    image,
    dir,
    name(tag) {
      const n = `dpt-${prefix}-${tag}-${randomBytes(3).toString('hex')}`;
      names.push(n);
      return n;
    },
    spec: (name, memoryMiB = 128) => guestDomainSpec({ name, serialLogPath: serialPath(name), image, memoryMiB, task: { mode: 'counter' } }),
    serialPath,
    lastCount,
    async waitCountAbove(name, after, timeoutMs = 60_000) {
      const log = await waitForSerial(serialPath(name), (l) => Math.max(0, ...counterValues(l)) > after, { timeoutMs, intervalMs: 200 });
      return Math.max(0, ...counterValues(log));
    },
    async cleanup(drivers) {
      for (const d of drivers) {
        for (const n of names) {
          await d.destroy(n).catch(() => undefined);
          await d.undefine(n).catch(() => undefined);
        }
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Mounts a tmpfs of `sizeMiB` at `dir` inside the test host's mount namespace only: files
 * there exist on the test host and not on this one (like a second machine's disk).
 */
export async function mountOnTestHost(host: TestHost, dir: string, sizeMiB: number): Promise<() => Promise<void>> {
  await execFileP('mkdir', ['-p', dir]);
  await execFileP('nsenter', [`--mount=${host.mountNs}`, 'mount', '-t', 'tmpfs', '-o', `size=${sizeMiB}m,mode=0700`, 'dpt-testhost-disk', dir]);
  return async () => {
    await execFileP('nsenter', [`--mount=${host.mountNs}`, 'umount', '-l', dir]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  };
}
