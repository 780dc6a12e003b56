// A `virsh start` that fails must surface as a typed error even though the driver reads the
// state in the same virsh process after it (virsh's exit code is the last command's).
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HypervisorError } from '../src/errors.js';
import { ensureGuestImage, guestDomainSpec } from '../src/guest.js';
import { LibvirtDriver } from '../src/libvirt/driver.js';

const driver = new LibvirtDriver({ uri: 'qemu:///system' });
const name = `dpt-startfail-${randomBytes(3).toString('hex')}`;
let dir = '';

afterAll(async () => {
  await driver.undefine(name).catch(() => undefined);
  driver.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('LibvirtDriver.start when QEMU cannot start the guest', () => {
  it('throws a HypervisorError with libvirt reason and leaves the domain shut off', async () => {
    const image = await ensureGuestImage();
    dir = await mkdtemp(join(tmpdir(), 'dpt-startfail-'));
    // The kernel file vanished after the domain was defined (a half-installed image).
    await driver.define(guestDomainSpec({ name, serialLogPath: join(dir, 'serial.log'), image: { ...image, kernel: join(dir, 'missing-vmlinux') } }));
    const err = await driver.start(name).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(HypervisorError);
    expect((err as HypervisorError).message).toMatch(/missing-vmlinux/);
    expect(await driver.state(name)).toBe('shutoff');
  });
});
