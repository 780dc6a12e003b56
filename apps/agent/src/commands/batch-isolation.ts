// What a batch VM may touch on this PC. Its definition comes over the wire and its disk image
// from a submitter's job spec, so before it is defined the agent checks that no path in it
// reaches a person's desktop: not a desktop disk, not a saved desktop state, not a checkpoint
// or the agent's own state. An allowlist (the image store) rather than only a denylist, because
// desktop disks may live anywhere an admin put them.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { DomainSpec } from '@deskpool/kvm-driver';

export interface BatchIsolationPolicy {
  /** Directories batch disk images must come from. */
  imageDirs: string[];
  /** Directories no batch VM may read or write, whatever imageDirs say. */
  protectedDirs: string[];
  /** Disk images of desktop VMs known on this PC (from their definitions). */
  desktopDisks: Iterable<string>;
}

/** Saved desktop states, batch checkpoints, libvirt's managed saves. The agent's state dir is added by the executor. */
export const DEFAULT_PROTECTED_DIRS = ['/var/lib/deskpool/saved', '/var/lib/deskpool/checkpoints', '/var/lib/libvirt/qemu/save'];
export const DEFAULT_BATCH_IMAGE_DIRS = ['/var/lib/deskpool/images'];

/** Where batch checkpoints are written and resumed from (the scheduler's convention). */
export const CHECKPOINT_DIR = '/var/lib/deskpool/checkpoints';

/** The path with symlinks resolved as far as it exists (a missing file resolves through its parent). */
async function resolved(p: string): Promise<string> {
  const abs = path.resolve(p);
  try {
    return await fs.realpath(abs);
  } catch {
    const parent = path.dirname(abs);
    if (parent === abs) return abs;
    return path.join(await resolved(parent), path.basename(abs));
  }
}

function within(file: string, dir: string): boolean {
  const rel = path.relative(dir, file);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * Problems with a batch VM's definition; empty when it may be defined. Every host path in it
 * (disks, kernel, initrd) is checked after resolving symlinks and `..`. The serial console log
 * is the agent's own (it sets it for batch VMs), so it is not checked here.
 */
export async function batchSpecProblems(spec: Pick<DomainSpec, 'disks' | 'boot'>, policy: BatchIsolationPolicy): Promise<string[]> {
  const problems: string[] = [];
  const imageDirs = await Promise.all(policy.imageDirs.map(resolved));
  const protectedDirs = await Promise.all(policy.protectedDirs.map(resolved));
  const desktopDisks = new Set(await Promise.all([...policy.desktopDisks].map(resolved)));
  const paths: [string, string][] = [
    ...spec.disks.map((d, i): [string, string] => [`disks.${i}.path`, d.path]),
    ...(spec.boot ? ([['boot.kernel', spec.boot.kernel]] as [string, string][]) : []),
    ...(spec.boot?.initrd ? ([['boot.initrd', spec.boot.initrd]] as [string, string][]) : []),
  ];
  for (const [field, given] of paths) {
    const real = await resolved(given);
    if (desktopDisks.has(real)) problems.push(`${field}: ${given} is a desktop's disk`);
    else if (protectedDirs.some((d) => within(real, d))) problems.push(`${field}: ${given} is in ${protectedDirs.find((d) => within(real, d))}, which holds desktop states, checkpoints or agent state`);
    else if (field.startsWith('disks.') && !imageDirs.some((d) => within(real, d))) problems.push(`${field}: ${given} is outside the batch image store (${policy.imageDirs.join(', ')})`);
  }
  return problems;
}

/** A batch task resumes only from a checkpoint file, never from anything else (a desktop's saved state above all). */
export async function checkpointPathProblem(file: string, checkpointDir = CHECKPOINT_DIR): Promise<string | null> {
  const real = await resolved(file);
  return within(real, await resolved(checkpointDir)) && real !== (await resolved(checkpointDir)) ? null : `${file} is not in the checkpoint directory ${checkpointDir}`;
}
