// Loads the part of the database one event can touch (its pool) as the core's Snapshot.
import { Prisma, type PrismaClient } from '@deskpool/db';
import type { EntityKind, Snapshot } from '../core/types.js';
import type { CommandNames } from './commands.js';
import { hostFromRow, jobFromRow, operationFromRow, poolFromRow, taskFromRow, userFromRow, vmFromRow } from './mapping.js';

export type Db = PrismaClient | Prisma.TransactionClient;

/** Which pools an event concerns; `all` for events that may place work anywhere. */
export type Scope = { poolIds: string[] } | 'all';

/** A snapshot plus what the committer needs to write it back safely. */
export interface LoadedSnapshot {
  snapshot: Snapshot;
  /** Optimistic-concurrency version of every loaded row, by entity kind and id. */
  versions: { [K in EntityKind]: Map<string, number> };
  /** Desktop (libvirt) names by VM id and host names by host id. */
  vmNames: Map<string, string>;
  hostNames: Map<string, string>;
  names: CommandNames;
}

const ACTIVE_JOB_STATES = ['queued', 'running'] as const;
const LIVE_TASK_STATES = ['queued', 'placed', 'running', 'checkpointing', 'checkpointed', 'stopping'] as const;

function emptyVersions(): LoadedSnapshot['versions'] {
  return { pools: new Map(), hosts: new Map(), vms: new Map(), users: new Map(), jobs: new Map(), tasks: new Map(), operations: new Map() };
}

/**
 * Reads pools, hosts, users, desktops, live batch work and in-flight operations of the scope.
 * Jobs without a pool are visible from every pool (they may run anywhere).
 */
export async function loadSnapshot(db: Db, scope: Scope): Promise<LoadedSnapshot> {
  const poolWhere = scope === 'all' ? {} : { id: { in: scope.poolIds } };
  const inPools = scope === 'all' ? {} : { poolId: { in: scope.poolIds } };
  const [pools, hosts, users, vms] = await Promise.all([
    db.pool.findMany({ where: poolWhere }),
    db.host.findMany({ where: inPools }),
    db.user.findMany({ where: scope === 'all' ? { poolId: { not: null } } : inPools }),
    db.desktopVm.findMany({ where: inPools }),
  ]);
  const hostIds = hosts.map((h) => h.id);
  const jobWhere = scope === 'all' ? {} : { OR: [{ poolId: { in: scope.poolIds } }, { poolId: null }] };
  const [jobs, operations] = await Promise.all([
    db.batchJob.findMany({ where: { ...jobWhere, state: { in: [...ACTIVE_JOB_STATES] } } }),
    db.operation.findMany({ where: { hostId: { in: hostIds }, planned: { not: Prisma.DbNull }, settledAt: null } }),
  ]);
  const jobIds = jobs.map((j) => j.id);
  // Live tasks of the visible jobs, and whatever runs on this scope's hosts (its job may be elsewhere).
  const tasks = await db.batchTask.findMany({
    where: { state: { in: [...LIVE_TASK_STATES] }, OR: [{ jobId: { in: jobIds } }, { hostId: { in: hostIds } }] },
  });
  const missingJobIds = [...new Set(tasks.map((t) => t.jobId))].filter((id) => !jobIds.includes(id));
  const extraJobs = missingJobIds.length > 0 ? await db.batchJob.findMany({ where: { id: { in: missingJobIds } } }) : [];

  const snapshot: Snapshot = { pools: {}, hosts: {}, vms: {}, users: {}, jobs: {}, tasks: {}, operations: {} };
  const versions = emptyVersions();
  const vmNames = new Map<string, string>();
  const hostNames = new Map<string, string>();
  const hostMacs = new Map<string, string>();
  const vmFootprints = new Map<string, { vcpus: number; memoryMiB: number }>();

  for (const row of pools) {
    snapshot.pools[row.id] = poolFromRow(row);
    versions.pools.set(row.id, row.version);
  }
  for (const row of hosts) {
    snapshot.hosts[row.id] = hostFromRow(row);
    versions.hosts.set(row.id, row.version);
    hostNames.set(row.id, row.name);
    if (row.mac) hostMacs.set(row.id, row.mac);
  }
  for (const row of users) {
    const user = userFromRow(row);
    if (!user) continue;
    snapshot.users[row.id] = user;
    versions.users.set(row.id, row.version);
  }
  for (const row of vms) {
    snapshot.vms[row.id] = vmFromRow(row);
    versions.vms.set(row.id, row.version);
    vmNames.set(row.id, row.name);
    vmFootprints.set(row.id, { vcpus: row.vcpus + row.augmentedVcpus, memoryMiB: row.memoryMiB + row.augmentedMemoryMiB });
  }
  const taskResources = new Map<string, ReturnType<typeof jobFromRow>['taskResources']>();
  for (const row of [...jobs, ...extraJobs]) {
    const planned = jobFromRow(row);
    snapshot.jobs[row.id] = planned.job;
    versions.jobs.set(row.id, row.version);
    taskResources.set(row.id, planned.taskResources);
  }
  for (const row of tasks) {
    const resources = taskResources.get(row.jobId);
    if (!resources) continue;
    snapshot.tasks[row.id] = taskFromRow(row, resources);
    versions.tasks.set(row.id, row.version);
  }
  for (const row of operations) {
    const op = operationFromRow(row);
    snapshot.operations[op.id] = op;
  }
  return {
    snapshot,
    versions,
    vmNames,
    hostNames,
    names: {
      vmName: (id) => vmNames.get(id),
      hostName: (id) => hostNames.get(id),
      vmFootprint: (id) => vmFootprints.get(id),
      hostMac: (id) => hostMacs.get(id),
    },
  };
}
