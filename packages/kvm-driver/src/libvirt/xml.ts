// DomainSpec -> libvirt domain XML. Pure; every value from the spec is escaped.
import { createHash } from 'node:crypto';
import type { DomainSpec } from '../driver.js';

export const DESKPOOL_XMLNS = 'https://deskpool.dev/xmlns/domain/1';

export function escapeXml(value: string | number): string {
  return String(value)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** Stable digest of a spec (key order independent), stored in the domain's metadata. */
export function specHash(spec: DomainSpec): string {
  return createHash('sha256').update(canonicalJson(spec)).digest('hex');
}

function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonicalJson(x)}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

export function domainXml(spec: DomainSpec): string {
  const e = escapeXml;
  const lines: string[] = [];
  lines.push(`<domain type='${e(spec.domainType)}'>`);
  lines.push(`  <name>${e(spec.name)}</name>`);
  lines.push(`  <metadata>`);
  lines.push(`    <deskpool:spec xmlns:deskpool='${DESKPOOL_XMLNS}' hash='${specHash(spec)}'/>`);
  lines.push(`  </metadata>`);
  // Memory above currentMemory is reached through the balloon (hotplugMemory), so the guest
  // is created with maxMemoryMiB and ballooned down to memoryMiB.
  lines.push(`  <memory unit='MiB'>${spec.maxMemoryMiB}</memory>`);
  lines.push(`  <currentMemory unit='MiB'>${spec.memoryMiB}</currentMemory>`);
  lines.push(`  <vcpu placement='static' current='${spec.vcpus}'>${spec.maxVcpus}</vcpu>`);
  lines.push(`  <os>`);
  lines.push(`    <type arch='x86_64' machine='pc'>hvm</type>`);
  if (spec.boot) {
    lines.push(`    <kernel>${e(spec.boot.kernel)}</kernel>`);
    if (spec.boot.initrd) lines.push(`    <initrd>${e(spec.boot.initrd)}</initrd>`);
    if (spec.boot.cmdline !== undefined) lines.push(`    <cmdline>${e(spec.boot.cmdline)}</cmdline>`);
  } else {
    lines.push(`    <boot dev='hd'/>`);
  }
  lines.push(`  </os>`);
  lines.push(`  <features><acpi/><apic/></features>`);
  // Under KVM the guest sees the host CPU (fast, migration between alike PCs); TCG keeps
  // QEMU's portable default model.
  if (spec.domainType === 'kvm') lines.push(`  <cpu mode='host-passthrough' check='none' migratable='on'/>`);
  lines.push(`  <clock offset='utc'/>`);
  lines.push(`  <on_poweroff>destroy</on_poweroff>`);
  lines.push(`  <on_reboot>restart</on_reboot>`);
  lines.push(`  <on_crash>destroy</on_crash>`);
  lines.push(`  <devices>`);
  // No USB controller: nothing uses it, and probing it costs a quarter second of guest boot.
  lines.push(`    <controller type='usb' model='none'/>`);
  for (const d of spec.disks) {
    lines.push(`    <disk type='file' device='disk'>`);
    lines.push(`      <driver name='qemu' type='${e(d.format)}' cache='none' discard='unmap'/>`);
    lines.push(`      <source file='${e(d.path)}'/>`);
    lines.push(`      <target dev='${e(d.target)}' bus='virtio'/>`);
    if (d.readonly) lines.push(`      <readonly/>`);
    lines.push(`    </disk>`);
  }
  const net = spec.network;
  if (net.type === 'network' || net.type === 'bridge') {
    lines.push(`    <interface type='${net.type}'>`);
    if (net.mac) lines.push(`      <mac address='${e(net.mac)}'/>`);
    lines.push(net.type === 'network' ? `      <source network='${e(net.network)}'/>` : `      <source bridge='${e(net.bridge)}'/>`);
    lines.push(`      <model type='virtio'/>`);
    lines.push(`    </interface>`);
  }
  // append='on': the log keeps everything across save/restore and migration back and forth.
  lines.push(`    <serial type='file'>`);
  lines.push(`      <source path='${e(spec.serialLogPath)}' append='on'/>`);
  lines.push(`      <target port='0'/>`);
  lines.push(`    </serial>`);
  if (spec.graphics === 'vnc') {
    lines.push(`    <graphics type='vnc' autoport='yes' listen='127.0.0.1'/>`);
    lines.push(`    <video><model type='vga'/></video>`);
  } else {
    lines.push(`    <video><model type='none'/></video>`);
  }
  lines.push(`    <memballoon model='virtio'><stats period='5'/></memballoon>`);
  lines.push(`  </devices>`);
  lines.push(`</domain>`);
  return lines.join('\n') + '\n';
}

/** The spec hash recorded in a domain's XML by domainXml(), if any. */
export function specHashFromXml(xml: string): string | undefined {
  const m = /<[\w-]+:spec\b[^>]*\bhash=['"]([0-9a-f]{64})['"]/.exec(xml);
  return m?.[1];
}

/** Live-tunable sizes in a domain XML (changed by hot-plug with --config). */
export function sizesFromXml(xml: string): { vcpus?: number; memoryKiB?: number } {
  const vcpu = /<vcpu\b[^>]*>(\d+)<\/vcpu>/.exec(xml);
  const current = /<vcpu\b[^>]*\bcurrent=['"](\d+)['"]/.exec(xml);
  const mem = /<currentMemory\b[^>]*>(\d+)<\/currentMemory>/.exec(xml);
  const unit = /<currentMemory\b[^>]*\bunit=['"](\w+)['"]/.exec(xml)?.[1] ?? 'KiB';
  const scale: Record<string, number> = { KiB: 1, k: 1, K: 1, MiB: 1024, M: 1024, GiB: 1024 * 1024, G: 1024 * 1024 };
  return {
    ...(current ? { vcpus: Number(current[1]) } : vcpu ? { vcpus: Number(vcpu[1]) } : {}),
    ...(mem ? { memoryKiB: Number(mem[1]) * (scale[unit] ?? 1) } : {}),
  };
}

/** The domain name inside a saved-state file's XML (virsh save-image-dumpxml). */
export function nameFromXml(xml: string): string | undefined {
  return /<name>([^<]+)<\/name>/.exec(xml)?.[1];
}
