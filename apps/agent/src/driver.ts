import os from 'node:os';
import { LibvirtDriver, SimulatedDriver, realSimClock, type HypervisorDriver } from '@deskpool/kvm-driver';
import type { AgentConfig } from './config.js';

/** The hypervisor door the agent acts through, from its config. */
export function createDriver(config: AgentConfig['driver']): HypervisorDriver {
  if (config.kind === 'libvirt') return new LibvirtDriver({ uri: config.uri });
  // Simulated domains live in this process only (demo and scale runs): real time, this PC's name.
  return new SimulatedDriver({ hostname: os.hostname(), clock: realSimClock });
}
