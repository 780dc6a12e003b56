import * as kvm from '@deskpool/kvm-driver';
import { LibvirtDriver, type HypervisorDriver } from '@deskpool/kvm-driver';
import type { AgentConfig } from './config.js';

export class DriverUnavailable extends Error {}

/** The hypervisor door the agent acts through, from its config. */
export function createDriver(config: AgentConfig['driver']): HypervisorDriver {
  if (config.kind === 'libvirt') return new LibvirtDriver({ uri: config.uri });
  // Looked up at run time: the simulated hypervisor lives in kvm-driver and may be absent from a build.
  const SimulatedDriver = (kvm as unknown as Record<string, unknown>).SimulatedDriver as (new () => HypervisorDriver) | undefined;
  if (!SimulatedDriver) throw new DriverUnavailable('this build of @deskpool/kvm-driver has no SimulatedDriver; use driver kind "libvirt"');
  return new SimulatedDriver();
}
