// Decides whether hardware virtualisation (libvirt type 'kvm') really works on a host. A KVM
// domain can start, save and migrate while its guest is hung (seen with nested KVM variants),
// so the only trustworthy check is to boot the tiny guest as 'kvm' and see its serial banner.
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { CommandRunner, DomainType } from '../driver.js';
import { InvalidSpec } from '../errors.js';
import { GUEST_READY_BANNER, guestDomainSpec, type GuestImage } from '../guest.js';
import { LocalCommandRunner } from '../runner.js';
import { LibvirtDriver } from './driver.js';

export interface KvmUsability {
  usable: boolean;
  /** The domain type to use on this host. */
  domainType: DomainType;
  reason: string;
  source: 'override' | 'probe';
}

export interface KvmProbeOptions {
  runner: CommandRunner;
  uri?: string;
  image: GuestImage;
  env?: NodeJS.ProcessEnv;
  /** How long a KVM guest gets to print its banner (it needs well under a second when KVM works). */
  timeoutMs?: number;
  /** Prefix of the probe domain's name (tests use "dpt-"). */
  namePrefix?: string;
}

const OverrideSchema = z.enum(['kvm', 'qemu']);

/** DESKPOOL_DOMAIN_TYPE=kvm|qemu skips the probe. */
export function domainTypeOverride(env: NodeJS.ProcessEnv = process.env): DomainType | undefined {
  const raw = env.DESKPOOL_DOMAIN_TYPE;
  if (raw === undefined || raw === '') return undefined;
  const parsed = OverrideSchema.safeParse(raw);
  if (!parsed.success) {
    throw new InvalidSpec(`DESKPOOL_DOMAIN_TYPE must be "kvm" or "qemu", got ${JSON.stringify(raw)}`, [{ path: 'DESKPOOL_DOMAIN_TYPE', message: 'expected "kvm" or "qemu"' }]);
  }
  return parsed.data;
}

export async function kvmUsability(opts: KvmProbeOptions): Promise<KvmUsability> {
  const override = domainTypeOverride(opts.env);
  if (override) return { usable: override === 'kvm', domainType: override, reason: 'DESKPOOL_DOMAIN_TYPE', source: 'override' };
  const dev = await opts.runner.run(['test', '-c', '/dev/kvm']);
  if (dev.code !== 0) return { usable: false, domainType: 'qemu', reason: '/dev/kvm does not exist', source: 'probe' };
  const check = await bootCheck({ ...opts, domainType: 'kvm' });
  return check.booted
    ? { usable: true, domainType: 'kvm', reason: check.reason, source: 'probe' }
    : { usable: false, domainType: 'qemu', reason: check.reason, source: 'probe' };
}

export interface BootCheck {
  booted: boolean;
  reason: string;
}

/** Boots the tiny guest as `domainType`, waits for its serial banner, and removes it again. */
export async function bootCheck(opts: KvmProbeOptions & { domainType: DomainType }): Promise<BootCheck> {
  const driver = new LibvirtDriver({ runner: opts.runner, uri: opts.uri ?? 'qemu:///system', domainType: opts.domainType });
  const tmp = await opts.runner.run(['mktemp', '-d', '/tmp/deskpool-kvmprobe.XXXXXX']);
  if (tmp.code !== 0) throw new Error(`cannot create a temp dir on ${opts.runner.description}: ${tmp.stderr}`);
  const dir = tmp.stdout.trim();
  const name = `${opts.namePrefix ?? 'deskpool-'}bootcheck-${randomBytes(4).toString('hex')}`;
  const serial = `${dir}/serial.log`;
  const timeoutMs = opts.timeoutMs ?? 8000;
  try {
    try {
      await driver.define(guestDomainSpec({ name, serialLogPath: serial, domainType: opts.domainType, memoryMiB: 128, image: opts.image }));
      await driver.start(name);
    } catch (e) {
      return { booted: false, reason: `a ${opts.domainType} domain does not start: ${e instanceof Error ? e.message : String(e)}` };
    }
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const log = await opts.runner.run(['cat', serial]);
      if (log.stdout.includes(GUEST_READY_BANNER)) return { booted: true, reason: `a ${opts.domainType} guest booted and printed its banner` };
      await new Promise((r) => setTimeout(r, 100));
    }
    return { booted: false, reason: `a ${opts.domainType} guest started but printed nothing within ${timeoutMs} ms (hung guest: nested or broken KVM?)` };
  } finally {
    await driver.destroy(name).catch(() => undefined);
    await driver.undefine(name).catch(() => undefined);
    await opts.runner.run(['rm', '-rf', '--', dir]).catch(() => undefined);
  }
}

/**
 * A LibvirtDriver whose hostInfo().domainType says what new domains on this host should use:
 * the override, else the boot check when a probe image is given, else the mere presence of
 * /dev/kvm (a PC without the test guest installed).
 */
export async function createLibvirtDriver(opts: Omit<KvmProbeOptions, 'image' | 'runner'> & { runner?: CommandRunner; image?: GuestImage; clock?: () => Date }): Promise<{ driver: LibvirtDriver; kvm: KvmUsability }> {
  const runner = opts.runner ?? new LocalCommandRunner();
  let kvm: KvmUsability;
  if (opts.image) {
    kvm = await kvmUsability({ ...opts, runner, image: opts.image });
  } else {
    const override = domainTypeOverride(opts.env);
    if (override) kvm = { usable: override === 'kvm', domainType: override, reason: 'DESKPOOL_DOMAIN_TYPE', source: 'override' };
    else {
      const dev = await runner.run(['test', '-c', '/dev/kvm']);
      kvm = dev.code === 0
        ? { usable: true, domainType: 'kvm', reason: '/dev/kvm exists (no probe image to boot-check it)', source: 'probe' }
        : { usable: false, domainType: 'qemu', reason: '/dev/kvm does not exist', source: 'probe' };
    }
  }
  const driver = new LibvirtDriver({ runner, uri: opts.uri ?? 'qemu:///system', domainType: kvm.domainType, ...(opts.clock ? { clock: opts.clock } : {}) });
  return { driver, kvm };
}
