// What an agent needs to define a VM that is not on its PC yet: a desktop's domain from its row,
// a batch task's from its job spec. Pure functions. Host-specific parts (domain type, console
// log path, the standard guest's kernel files) are filled in by the agent.
import { jobSpecSchema, type StandardGuestTask } from '@deskpool/protocol';
import type { DesktopVm as DesktopVmRow } from '@deskpool/db';

export type DesktopSpecRecord = Pick<DesktopVmRow, 'name' | 'vcpus' | 'maxVcpus' | 'memoryMiB' | 'maxMemoryMiB' | 'diskLocation'>;

/**
 * A desktop's domain definition, or undefined when its disk location is not an image path the
 * host can open (e.g. an adopted domain whose definition already lives on its PC): such a
 * desktop can only be started where it is already defined.
 */
export function desktopDomainSpec(row: DesktopSpecRecord): Record<string, unknown> | undefined {
  if (!/^\/[^\0]+$/.test(row.diskLocation)) return undefined;
  return {
    name: row.name,
    vcpus: row.vcpus,
    maxVcpus: Math.max(row.vcpus, row.maxVcpus),
    memoryMiB: row.memoryMiB,
    maxMemoryMiB: Math.max(row.memoryMiB, row.maxMemoryMiB),
    disks: [{ path: row.diskLocation, format: imageFormat(row.diskLocation), target: 'vda' }],
  };
}

function imageFormat(path: string): 'qcow2' | 'raw' {
  return /\.(img|raw)$/i.test(path) ? 'raw' : 'qcow2';
}

/** How a batch task's VM is booted: its own disk image, or the standard guest with a command. */
export type BatchBoot = { spec: Record<string, unknown> } | { guest: StandardGuestTask };

/**
 * The boot description of task `index` of a job, from the stored job spec; undefined when the
 * spec no longer parses (the task then starts only where its domain is already defined, and the
 * agent says so).
 */
export function batchBootOf(storedSpec: unknown, domainName: string, index: number): BatchBoot | undefined {
  const parsed = jobSpecSchema.safeParse(storedSpec);
  if (!parsed.success) return undefined;
  const s = parsed.data;
  if (s.command) return { guest: { command: s.command, env: s.env, index, vcpus: s.cores, memoryMiB: s.memoryMiB } };
  if (!s.image) return undefined;
  return {
    spec: {
      name: domainName,
      vcpus: s.cores,
      maxVcpus: s.cores,
      memoryMiB: s.memoryMiB,
      maxMemoryMiB: s.memoryMiB,
      disks: [{ path: s.image, format: imageFormat(s.image), target: 'vda' }],
    },
  };
}
