import * as kvm from '@deskpool/kvm-driver';
import type { HypervisorDriver } from '@deskpool/kvm-driver';
import type { AgentConfig } from './config.js';

export class DriverUnavailable extends Error {}

/** The hypervisor door the agent acts through, from its config. */
export function createDriver(config: AgentConfig['driver']): HypervisorDriver {
  // Looked up at run time: the kvm-driver package grows its implementations independently.
  const exported = kvm as unknown as Record<string, unknown>;
  if (config.kind === 'libvirt') {
    const LibvirtDriver = exported.LibvirtDriver as (new (options: { uri: string }) => HypervisorDriver) | undefined;
    if (!LibvirtDriver) throw new DriverUnavailable('this build of @deskpool/kvm-driver has no LibvirtDriver; use driver kind "simulated" or update the package');
    return new LibvirtDriver({ uri: config.uri });
  }
  const SimulatedDriver = exported.SimulatedDriver as (new () => HypervisorDriver) | undefined;
  if (!SimulatedDriver) throw new DriverUnavailable('this build of @deskpool/kvm-driver has no SimulatedDriver');
  return new SimulatedDriver();
}
