// Loads the part of the database one event can touch (its pool) as the core's Snapshot.
import { Prisma, type PrismaClient } from '@deskpool/db';
import type { EntityKind, Snapshot } from '../core/types.js';
import { focusNeedsWholePool, type FocusedEvent } from './focus.js';
import type { CommandNames } from './commands.js';
import { batchBootOf, desktopDomainSpec } from './domain-specs.js';
import { batchDomainNameOf, hostFromRow, isCompanionOperation, jobFromRow, operationFromRow, poolFromRow, taskFromRow, userFromRow, vmFromRow } from './mapping.js';

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
  return assemble({ pools, hosts, users, vms, jobs: [...jobs, ...extraJobs], tasks, operations });
}

/**
 * focusSnapshot (focus.ts) of the pool's snapshot, read without the rest of the pool: a few
 * indexed lookups instead of every row. Null when the focused subset is not enough (the caller
 * reads the whole pool then) or the PC is not in the pool.
 */
export async function loadFocusedSnapshot(db: Db, poolId: string, event: FocusedEvent): Promise<LoadedSnapshot | null> {
  const [pools, host] = await Promise.all([db.pool.findMany({ where: { id: poolId } }), db.host.findFirst({ where: { id: event.hostId, poolId } })]);
  if (!host) return null;
  const userId = event.userId ?? host.ownerUserId ?? null;
  const [users, vms, tasks] = await Promise.all([
    userId === null ? Promise.resolve([]) : db.user.findMany({ where: { id: userId, poolId } }),
    db.desktopVm.findMany({
      where: { poolId, OR: [...(userId === null ? [] : [{ ownerUserId: userId }]), { currentHostId: host.id }, { sourceHostId: host.id }] },
    }),
    db.batchTask.findMany({ where: { hostId: host.id, state: { in: [...LIVE_TASK_STATES] } } }),
  ]);
  const otherHostIds = new Set<string>();
  for (const vm of vms) {
    if (vm.ownerUserId !== userId) continue;
    for (const id of [vm.currentHostId, vm.sourceHostId, vm.savedStateHostId]) if (id && id !== host.id) otherHostIds.add(id);
  }
  const jobIds = [...new Set(tasks.map((t) => t.jobId))];
  const [otherHosts, jobs] = await Promise.all([
    otherHostIds.size === 0 ? Promise.resolve([]) : db.host.findMany({ where: { id: { in: [...otherHostIds] }, poolId } }),
    jobIds.length === 0 ? Promise.resolve([]) : db.batchJob.findMany({ where: { id: { in: jobIds } } }),
  ]);
  const hosts = [host, ...otherHosts];
  const operations = await db.operation.findMany({ where: { hostId: { in: hosts.map((h) => h.id) }, planned: { not: Prisma.DbNull }, settledAt: null } });
  const loaded = assemble({ pools, hosts, users, vms, jobs, tasks, operations });
  return focusNeedsWholePool(loaded.snapshot, userId) ? null : loaded;
}

interface Rows {
  pools: Awaited<ReturnType<PrismaClient['pool']['findMany']>>;
  hosts: Awaited<ReturnType<PrismaClient['host']['findMany']>>;
  users: Awaited<ReturnType<PrismaClient['user']['findMany']>>;
  vms: Awaited<ReturnType<PrismaClient['desktopVm']['findMany']>>;
  /** Every job a task refers to must be here, or the task is left out. */
  jobs: Awaited<ReturnType<PrismaClient['batchJob']['findMany']>>;
  tasks: Awaited<ReturnType<PrismaClient['batchTask']['findMany']>>;
  operations: Awaited<ReturnType<PrismaClient['operation']['findMany']>>;
}

function assemble({ pools, hosts, users, vms, jobs, tasks, operations }: Rows): LoadedSnapshot {
  const snapshot: Snapshot = { pools: {}, hosts: {}, vms: {}, users: {}, jobs: {}, tasks: {}, operations: {} };
  const versions = emptyVersions();
  const vmNames = new Map<string, string>();
  const hostNames = new Map<string, string>();
  const hostMacs = new Map<string, string>();
  const vmFootprints = new Map<string, { vcpus: number; memoryMiB: number }>();
  const vmSpecs = new Map<string, Record<string, unknown>>();
  const hostMigrationTargets = new Map<string, { uri: string; dataUri?: string }>();

  for (const row of pools) {
    snapshot.pools[row.id] = poolFromRow(row);
    versions.pools.set(row.id, row.version);
  }
  for (const row of hosts) {
    snapshot.hosts[row.id] = hostFromRow(row);
    versions.hosts.set(row.id, row.version);
    hostNames.set(row.id, row.name);
    if (row.mac) hostMacs.set(row.id, row.mac);
    const migrationTarget = migrationTargetOf(row.inventory);
    if (migrationTarget) hostMigrationTargets.set(row.id, migrationTarget);
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
    const spec = desktopDomainSpec(row);
    if (spec) vmSpecs.set(row.id, spec);
  }
  const taskResources = new Map<string, ReturnType<typeof jobFromRow>['taskResources']>();
  const jobSpecs = new Map<string, unknown>();
  const taskIndexes = new Map<string, { jobId: string; index: number }>();
  for (const row of jobs) {
    jobSpecs.set(row.id, row.spec);
    const planned = jobFromRow(row);
    snapshot.jobs[row.id] = planned.job;
    versions.jobs.set(row.id, row.version);
    taskResources.set(row.id, planned.taskResources);
  }
  for (const row of tasks) {
    const resources = taskResources.get(row.jobId);
    if (!resources) continue;
    snapshot.tasks[row.id] = taskFromRow(row, resources);
    taskIndexes.set(row.id, { jobId: row.jobId, index: row.index });
    versions.tasks.set(row.id, row.version);
  }
  for (const row of operations) {
    if (isCompanionOperation(row.planned)) continue;
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
      vmDomainSpec: (id) => vmSpecs.get(id),
      taskBoot: (id) => {
        const t = taskIndexes.get(id);
        return t ? batchBootOf(jobSpecs.get(t.jobId), batchDomainNameOf(id), t.index) : undefined;
      },
      hostMigrationTarget: (id) => hostMigrationTargets.get(id),
    },
  };
}

/** Where a PC takes incoming live migrations, as its inventory advertises it. */
function migrationTargetOf(inventory: unknown): { uri: string; dataUri?: string } | undefined {
  const hv = (inventory as { hypervisor?: { migrationUri?: unknown; migrationDataUri?: unknown } } | null)?.hypervisor;
  if (typeof hv?.migrationUri !== 'string' || hv.migrationUri.length === 0) return undefined;
  return typeof hv.migrationDataUri === 'string' && hv.migrationDataUri.length > 0 ? { uri: hv.migrationUri, dataUri: hv.migrationDataUri } : { uri: hv.migrationUri };
}
