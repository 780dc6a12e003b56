// The driver contract against the simulated hypervisor, on a virtual clock (runs in ms).
import { randomBytes } from 'node:crypto';
import { guestDomainSpec } from '../src/guest.js';
import { VirtualClock } from '../src/sim/clock.js';
import { SimulatedDriver } from '../src/sim/driver.js';
import { runDriverContract, type ContractEnv, type GuestOptions } from './contract.js';

const image = { kernel: '/sim/guest/vmlinux', initrd: '/sim/guest/initramfs.cpio.gz' };

runDriverContract('SimulatedDriver', async () => {
  const clock = new VirtualClock({ autoAdvance: true });
  const driver = new SimulatedDriver({ clock, hostname: 'sim-a', memoryMiB: 8192 });
  const drivers: SimulatedDriver[] = [driver];
  const run = randomBytes(3).toString('hex');
  const guestSpec = (name: string, o: GuestOptions = {}) => guestDomainSpec({ name, serialLogPath: `/sim/serial/${name}.log`, image, ...o });
  const serialOf = (path: string): string => drivers.map((d) => d.serialLog(path)).join('');
  const env: ContractEnv = {
    driver,
    name: (tag) => `dpt-sim-${tag}-${run}`,
    guestSpec,
    serial: async (spec) => serialOf(spec.serialLogPath),
    waitForSerial: async (spec, pred, timeoutMs = 60_000) => {
      const deadline = clock.now() + timeoutMs;
      for (;;) {
        const log = serialOf(spec.serialLogPath);
        if (pred(log)) return log;
        if (clock.now() > deadline) throw new Error(`simulated guest did not print the expected output within ${timeoutMs} ms:\n${log.slice(-300)}`);
        await clock.advance(100);
      }
    },
    pass: (ms) => clock.advance(ms),
    tinyDisk: async () => {
      driver.setDiskFree('/sim/tiny', 1024 * 1024);
      return '/sim/tiny';
    },
    tmpDir: '/sim/tmp',
    stoppable: async () => {
      const other = new SimulatedDriver({ clock, hostname: 'sim-b' });
      drivers.push(other);
      return {
        driver: other,
        guestSpec,
        stop: async () => other.setHypervisorDown(true),
        start: async () => other.setHypervisorDown(false),
        dispose: async () => undefined,
      };
    },
    cleanup: async () => undefined,
  };
  return env;
});
