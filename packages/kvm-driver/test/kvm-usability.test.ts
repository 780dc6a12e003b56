// Whether KVM is usable is decided by booting the tiny guest and reading its banner.
import { describe, expect, it } from 'vitest';
import { InvalidSpec } from '../src/errors.js';
import { ensureGuestImage } from '../src/guest.js';
import { LibvirtDriver } from '../src/libvirt/driver.js';
import { bootCheck, createLibvirtDriver, domainTypeOverride, kvmUsability } from '../src/libvirt/kvm-usability.js';
import { LocalCommandRunner } from '../src/runner.js';

const runner = new LocalCommandRunner();

describe('KVM usability', () => {
  it('follows DESKPOOL_DOMAIN_TYPE without probing, and rejects a bad value naming the variable', async () => {
    const image = await ensureGuestImage();
    expect(await kvmUsability({ runner, image, env: { DESKPOOL_DOMAIN_TYPE: 'qemu' } })).toEqual({ usable: false, domainType: 'qemu', reason: 'DESKPOOL_DOMAIN_TYPE', source: 'override' });
    expect((await kvmUsability({ runner, image, env: { DESKPOOL_DOMAIN_TYPE: 'kvm' } })).domainType).toBe('kvm');
    let err: unknown;
    try {
      domainTypeOverride({ DESKPOOL_DOMAIN_TYPE: 'xen' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidSpec);
    expect((err as InvalidSpec).issues[0]?.path).toBe('DESKPOOL_DOMAIN_TYPE');
  });

  it('the boot check sees a guest that boots (qemu) and one that cannot (kvm here), and leaves nothing behind', async () => {
    const image = await ensureGuestImage();
    const ok = await bootCheck({ runner, image, domainType: 'qemu', namePrefix: 'dpt-', timeoutMs: 60_000 });
    expect(ok).toEqual({ booted: true, reason: 'a qemu guest booted and printed its banner' });
    const kvm = await bootCheck({ runner, image, domainType: 'kvm', namePrefix: 'dpt-', timeoutMs: 8_000 });
    expect(kvm.booted).toBe(false);
    expect(kvm.reason.length).toBeGreaterThan(10);
    const left = (await new LibvirtDriver().list()).filter((d) => d.name.startsWith('dpt-bootcheck-'));
    expect(left).toEqual([]);
  }, 120_000);

  it('on this machine (no usable /dev/kvm, or the nested kvm_pvm) says "not usable" and picks qemu', async () => {
    const image = await ensureGuestImage();
    const r = await kvmUsability({ runner, image, env: {}, namePrefix: 'dpt-', timeoutMs: 8_000 });
    expect(r).toMatchObject({ usable: false, domainType: 'qemu', source: 'probe' });
    const { driver, kvm } = await createLibvirtDriver({ image, env: {}, namePrefix: 'dpt-', timeoutMs: 8_000 });
    expect(kvm.domainType).toBe('qemu');
    expect((await driver.hostInfo()).domainType).toBe('qemu');
    driver.close();
  }, 60_000);
});
