// What a simulated office PC reports as its hardware.
import type { HostInventory } from '@deskpool/protocol';

export function simulatedInventory(pc: number, hostname: string, cpus: number, memoryMiB: number): HostInventory {
  const hex = (pc + 1).toString(16).padStart(4, '0');
  return {
    hostname,
    cpuCores: cpus,
    cpuModel: 'simulated office PC',
    memoryMiB,
    diskGiB: 500,
    gpus: [],
    macAddresses: [`52:54:00:c0:${hex.slice(0, 2)}:${hex.slice(2)}`],
    hypervisor: { kvm: true, libvirtVersion: null, qemuVersion: null, liveMigration: true, hotplugCpu: true, hotplugMemory: true },
    agentVersion: '0.1.0',
    os: 'simulated',
  };
}
