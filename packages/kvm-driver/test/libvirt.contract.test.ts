// The driver contract against real libvirtd + QEMU (TCG) + the tiny guest.
// "libvirtd down" runs against a second libvirt host this file starts itself
// (scripts/testhost.sh), so the machine's own libvirtd, which other tests use, stays up.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ensureGuestImage, guestDomainSpec, readSerialLog, waitForSerial, type GuestImage } from '../src/guest.js';
import { LibvirtDriver } from '../src/libvirt/driver.js';
import { runDriverContract, type ContractEnv, type GuestOptions, type StoppableHypervisor } from './contract.js';

const execFileP = promisify(execFile);
const repo = fileURLToPath(new URL('../../../', import.meta.url));
const TESTHOST = 'dptkvm';
// Other test files run their own test hosts: this address (and name) is this file's alone.
const TESTHOST_ADDR = '10.77.173.2';

async function sh(argv: string[]): Promise<string> {
  const [cmd, ...args] = argv;
  const { stdout } = await execFileP(cmd ?? 'false', args, { maxBuffer: 4 * 1024 * 1024 });
  return stdout;
}

async function testHost(image: GuestImage, serialDir: string): Promise<StoppableHypervisor> {
  const script = join(repo, 'scripts/testhost.sh');
  await sh(['bash', script, 'up', TESTHOST, TESTHOST_ADDR]);
  const pidFile = `/var/lib/deskpool-testhost/${TESTHOST}/libvirtd.pid`;
  const driver = new LibvirtDriver({ uri: `qemu+tcp://${TESTHOST_ADDR}/system` });
  return {
    driver,
    guestSpec: (name: string, o: GuestOptions = {}) => guestDomainSpec({ name, serialLogPath: `${serialDir}/${name}.log`, image, ...o }),
    // The daemon this file started (through testhost.sh), stopped by its pid.
    stop: async () => {
      const pid = Number((await readFile(pidFile, 'utf8')).trim());
      process.kill(pid, 'SIGTERM');
      const gone = async (): Promise<boolean> => {
        try {
          process.kill(pid, 0);
          return false;
        } catch {
          // and nothing else answers on its address any more
          return execFileP('virsh', ['-c', `qemu+tcp://${TESTHOST_ADDR}/system`, 'version']).then(
            () => false,
            () => true,
          );
        }
      };
      for (let i = 0; i < 100; i++) {
        if (await gone()) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`libvirtd ${pid} of ${TESTHOST} did not stop`);
    },
    start: async () => {
      await sh(['bash', script, 'up', TESTHOST, TESTHOST_ADDR]);
    },
    dispose: async () => {
      await sh(['bash', script, 'down', TESTHOST]);
    },
  };
}

runDriverContract('LibvirtDriver (qemu:///system, TCG)', async () => {
  const image = await ensureGuestImage();
  const driver = new LibvirtDriver();
  const tmpDir = await mkdtemp(join(tmpdir(), 'dpt-kvm-contract-'));
  const run = randomBytes(3).toString('hex');
  const names = new Set<string>();
  const mounts: string[] = [];
  const env: ContractEnv = {
    driver,
    name: (tag) => {
      const n = `dpt-kvm-${tag}-${run}`;
      names.add(n);
      return n;
    },
    guestSpec: (name, o: GuestOptions = {}) => guestDomainSpec({ name, serialLogPath: `${tmpDir}/${name}.log`, image, ...o }),
    serial: (spec) => readSerialLog(spec.serialLogPath),
    waitForSerial: (spec, pred, timeoutMs = 90_000) => waitForSerial(spec.serialLogPath, pred, { timeoutMs }),
    pass: (ms) => new Promise((r) => setTimeout(r, ms)),
    tinyDisk: async () => {
      const dir = join(tmpDir, 'tiny');
      await mkdir(dir, { recursive: true });
      await sh(['mount', '-t', 'tmpfs', '-o', 'size=1m', 'dpt-tiny', dir]);
      mounts.push(dir);
      return dir;
    },
    tmpDir,
    stoppable: () => testHost(image, tmpDir),
    cleanup: async () => {
      for (const n of names) {
        await driver.destroy(n).catch(() => undefined);
        await driver.undefine(n).catch(() => undefined);
      }
      for (const m of mounts) await sh(['umount', m]).catch(() => undefined);
      await rm(tmpDir, { recursive: true, force: true });
    },
  };
  return env;
});
