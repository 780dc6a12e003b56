// DomainSpec -> domain XML: escaping, sizes, and the spec hash that makes define idempotent.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DomainSpecSchema } from '../src/driver.js';
import { domainXml, escapeXml, sizesFromXml, specHash, specHashFromXml } from '../src/libvirt/xml.js';

const base = DomainSpecSchema.parse({
  name: 'dpt-x',
  domainType: 'qemu',
  vcpus: 1,
  maxVcpus: 4,
  memoryMiB: 128,
  maxMemoryMiB: 512,
  serialLogPath: '/tmp/a & b/<serial>.log',
  boot: { kernel: '/k', initrd: '/i', cmdline: `console=ttyS0 a="b" c='d' <e>` },
});

describe('domainXml', () => {
  it('escapes every value taken from the spec', () => {
    const xml = domainXml(base);
    expect(xml).toContain(`<source path='/tmp/a &amp; b/&lt;serial&gt;.log' append='on'/>`);
    expect(xml).toContain('<cmdline>console=ttyS0 a=&quot;b&quot; c=&apos;d&apos; &lt;e&gt;</cmdline>');
    expect(xml).not.toContain('<e>');
  });

  it('escapes any string so that it cannot open or close markup', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        const e = escapeXml(s);
        expect(e).not.toMatch(/[<>"']/);
        expect(e.replace(/&(amp|lt|gt|quot|apos);/g, '')).not.toContain('&');
      }),
    );
  });

  it('sets current and maximum sizes, recoverable from the XML', () => {
    const xml = domainXml(base);
    expect(xml).toContain(`<vcpu placement='static' current='1'>4</vcpu>`);
    expect(xml).toContain(`<memory unit='MiB'>512</memory>`);
    expect(sizesFromXml(xml)).toEqual({ vcpus: 1, memoryKiB: 128 * 1024 });
    expect(sizesFromXml(`<vcpu placement='static' current='2'>4</vcpu><currentMemory unit='KiB'>196608</currentMemory>`)).toEqual({ vcpus: 2, memoryKiB: 196608 });
  });

  it('records a hash that depends on content, not key order', () => {
    const xml = domainXml(base);
    expect(specHashFromXml(xml)).toBe(specHash(base));
    const reordered = DomainSpecSchema.parse(Object.fromEntries(Object.entries(base).reverse()));
    expect(specHash(reordered)).toBe(specHash(base));
    expect(specHash({ ...base, vcpus: 2 })).not.toBe(specHash(base));
    // libvirt rewrites our metadata element with its own quoting and prefix
    expect(specHashFromXml(`<metadata>\n<deskpool:spec xmlns:deskpool="https://deskpool.dev/xmlns/domain/1" hash="${specHash(base)}"/></metadata>`)).toBe(specHash(base));
  });

  it('adds host CPU passthrough only for kvm, disks and networks when asked', () => {
    const kvm = domainXml({ ...base, domainType: 'kvm', disks: [{ path: '/d.qcow2', format: 'qcow2', target: 'vda', readonly: true }], network: { type: 'bridge', bridge: 'br0' } });
    expect(kvm).toContain(`<domain type='kvm'>`);
    expect(kvm).toContain('host-passthrough');
    expect(kvm).toContain(`<source file='/d.qcow2'/>`);
    expect(kvm).toContain('<readonly/>');
    expect(kvm).toContain(`<source bridge='br0'/>`);
    expect(domainXml(base)).not.toContain('host-passthrough');
  });

  it('rejects specs that libvirt would refuse or that are inconsistent, naming the field', () => {
    const r = DomainSpecSchema.safeParse({ ...base, memoryMiB: 1024, serialLogPath: 'relative.log' });
    expect(r.success).toBe(false);
    expect(r.error?.issues.map((i) => i.path.join('.')).sort()).toEqual(['memoryMiB', 'serialLogPath']);
  });
});
