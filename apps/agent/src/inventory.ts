import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import { promisify } from 'node:util';
import type { HostInventory } from '@deskpool/protocol';

const run = promisify(execFile);

export const AGENT_VERSION = '0.1.0';

async function readText(file: string): Promise<string | null> {
  return fs.readFile(file, 'utf8').then((t) => t.trim(), () => null);
}

/** Display controllers (PCI class 0x03xxxx) from sysfs, with vendor names for the usual three. */
export async function detectGpus(sysPci = '/sys/bus/pci/devices'): Promise<HostInventory['gpus']> {
  const vendors: Record<string, string> = { '0x10de': 'nvidia', '0x1002': 'amd', '0x8086': 'intel', '0x1234': 'qemu', '0x1af4': 'virtio' };
  const entries = await fs.readdir(sysPci).catch(() => [] as string[]);
  const gpus: HostInventory['gpus'] = [];
  for (const entry of entries) {
    const cls = await readText(`${sysPci}/${entry}/class`);
    if (!cls?.startsWith('0x03')) continue;
    const vendor = (await readText(`${sysPci}/${entry}/vendor`)) ?? 'unknown';
    const device = (await readText(`${sysPci}/${entry}/device`)) ?? 'unknown';
    gpus.push({ vendor: vendors[vendor] ?? vendor, model: `${entry} ${vendor}:${device}` });
  }
  return gpus.slice(0, 32);
}

export function macAddresses(interfaces = os.networkInterfaces()): string[] {
  const macs = new Set<string>();
  for (const addrs of Object.values(interfaces)) {
    for (const a of addrs ?? []) if (!a.internal && a.mac && a.mac !== '00:00:00:00:00:00') macs.add(a.mac.toLowerCase());
  }
  return [...macs].sort().slice(0, 64);
}

async function libvirtVersions(uri: string | null): Promise<{ libvirt: string | null; qemu: string | null }> {
  if (!uri) return { libvirt: null, qemu: null };
  try {
    const { stdout } = await run('virsh', ['-c', uri, 'version'], { timeout: 5_000, env: { ...process.env, LC_ALL: 'C' } });
    return {
      libvirt: /Using library: libvirt (\S+)/.exec(stdout)?.[1] ?? null,
      qemu: /Running hypervisor: QEMU (\S+)/.exec(stdout)?.[1] ?? null,
    };
  } catch {
    return { libvirt: null, qemu: null };
  }
}

/** What this PC offers; libvirtUri null when the agent drives a simulated hypervisor. */
export async function collectInventory(stateDir: string, libvirtUri: string | null, migration?: { uri: string; dataUri?: string | undefined }): Promise<HostInventory> {
  const cpus = os.cpus();
  const disk = await fs.statfs(stateDir).catch(() => fs.statfs('/'));
  const kvm = await fs.access('/dev/kvm').then(() => true, () => false);
  const versions = await libvirtVersions(libvirtUri);
  const osRelease = await readText('/etc/os-release');
  return {
    hostname: os.hostname(),
    cpuCores: Math.max(1, cpus.length),
    ...(cpus[0]?.model ? { cpuModel: cpus[0].model.slice(0, 256) } : {}),
    memoryMiB: Math.max(1, Math.floor(os.totalmem() / 1024 / 1024)),
    diskGiB: Math.floor((disk.bavail * disk.bsize) / 1024 ** 3),
    gpus: await detectGpus(),
    macAddresses: macAddresses(),
    hypervisor: {
      kvm,
      libvirtVersion: versions.libvirt,
      qemuVersion: versions.qemu,
      liveMigration: versions.libvirt !== null,
      hotplugCpu: versions.qemu !== null,
      hotplugMemory: versions.qemu !== null,
      ...(migration ? { migrationUri: migration.uri, ...(migration.dataUri ? { migrationDataUri: migration.dataUri } : {}) } : {}),
    },
    agentVersion: AGENT_VERSION,
    ...(osRelease ? { os: (/^PRETTY_NAME="?([^"\n]*)"?/m.exec(osRelease)?.[1] ?? 'linux').slice(0, 256) } : {}),
  };
}
