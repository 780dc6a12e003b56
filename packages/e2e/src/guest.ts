// A desktop under test: the tiny guest in counter mode. Its serial console prints COUNT 1, 2, …
// once a second, so "guest state intact" after a suspend/restore or a move means the counter
// continues from where it was instead of starting again at 1.
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { counterValues, ensureGuestImage, guestDomainSpec, readSerialLog, waitForSerial, type DomainType, type LibvirtDriver } from '@deskpool/kvm-driver';

export class CounterGuest {
  private constructor(
    readonly domain: string,
    readonly serialPath: string,
    readonly memoryMiB: number,
    private readonly drivers: LibvirtDriver[],
  ) {}

  /**
   * Defines and boots a counter guest on `driver`; resolves once it has counted. `domainType`:
   * 'kvm' where the host's KVM was found usable (kvmUsability), else QEMU emulation.
   */
  static async boot(driver: LibvirtDriver, dir: string, tag: string, memoryMiB = 256, domainType: DomainType = 'qemu'): Promise<CounterGuest> {
    const image = await ensureGuestImage();
    const domain = `dpt-e2e-${tag}-${randomBytes(3).toString('hex')}`;
    // Outside the private libvirt directories, so a namespaced test host sees the same path.
    const serialPath = path.join(dir, `${domain}.serial.log`);
    const guest = new CounterGuest(domain, serialPath, memoryMiB, [driver]);
    await driver.define(guestDomainSpec({ name: domain, serialLogPath: serialPath, image, memoryMiB, domainType, task: { mode: 'counter' } }));
    try {
      await driver.start(domain);
      // Generous: several guests booting at once under emulation on a loaded machine take minutes.
      await guest.waitCountAbove(1, 300_000);
    } catch (e) {
      // Nobody holds the guest yet to clean it up.
      await guest.remove();
      throw e;
    }
    return guest;
  }

  /** Drivers of other hosts the guest may have moved to (for clean-up). */
  alsoOn(driver: LibvirtDriver): void {
    if (!this.drivers.includes(driver)) this.drivers.push(driver);
  }

  async counts(): Promise<number[]> {
    return counterValues(await readSerialLog(this.serialPath));
  }

  async lastCount(): Promise<number> {
    return Math.max(0, ...(await this.counts()));
  }

  /** Waits until the guest prints a COUNT above `after`; returns the highest one. */
  async waitCountAbove(after: number, timeoutMs = 60_000): Promise<number> {
    const log = await waitForSerial(this.serialPath, (l) => Math.max(0, ...counterValues(l)) > after, { timeoutMs, intervalMs: 100 });
    return Math.max(0, ...counterValues(log));
  }

  /** True when the counter never started again from 1 after its first run (no reboot). */
  async neverRebooted(): Promise<boolean> {
    return (await this.counts()).indexOf(1, 1) === -1;
  }

  /**
   * Destroys and undefines the guest wherever it may be, until libvirt no longer knows it. Once
   * is not enough: a restore still in flight when the test ends holds the domain's job lock, so
   * the destroy fails while the undefine succeeds, and the restore then finishes into a
   * transient domain that nothing would ever stop.
   */
  async remove(deadlineMs = 60_000): Promise<void> {
    const until = Date.now() + deadlineMs;
    for (const d of this.drivers) {
      for (;;) {
        await d.destroy(this.domain).catch(() => undefined);
        await d.undefine(this.domain).catch(() => undefined);
        const state = await d.state(this.domain).catch(() => 'unknown');
        if (state === 'missing' || Date.now() > until) break;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }
}
