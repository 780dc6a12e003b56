// Loads the part of the database one event can touch (its pool) as the core's Snapshot.
import { Prisma, type PrismaClient } from '@deskpool/db';
import type { EntityKind, Snapshot } from '../core/types.js';
import { focusNeedsWholePool, type FocusedEvent } from './focus.js';
import type { PlannedDispatch } from './commit.js';
import { dispatchesOfRows, undispatchedSql, type UndispatchedRow } from './dispatch.js';
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
  /**
   * loadFocusedSnapshot only, given the event id: what an interrupted earlier run of the event
   * committed but never sent (undispatchedOfEvent), read in the same statement.
   */
  unsentOfEvent?: PlannedDispatch[];
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
 * focusSnapshot (focus.ts) of the pool's snapshot, read without the rest of the pool, in one
 * statement (one round trip, a few indexed lookups) instead of a query per table over every
 * row. Null when the focused subset is not enough (the caller reads the whole pool then) or the
 * PC is not in the pool.
 */
export async function loadFocusedSnapshot(db: Db, poolId: string, event: FocusedEvent, eventId?: string): Promise<LoadedSnapshot | null> {
  const [found] = await db.$queryRawUnsafe<FocusedRows[]>(FOCUSED_SQL, poolId, event.hostId, event.userId, [...LIVE_TASK_STATES], eventId ?? null);
  if (!found?.hosts?.some((h) => h.id === event.hostId)) return null;
  const loaded = assemble({
    pools: (found.pools ?? []).map((r) => rowOf<Rows['pools'][number]>(r)),
    hosts: (found.hosts ?? []).map((r) => rowOf<Rows['hosts'][number]>(r)),
    users: (found.users ?? []).map((r) => rowOf<Rows['users'][number]>(r)),
    vms: (found.vms ?? []).map((r) => rowOf<Rows['vms'][number]>(r)),
    jobs: (found.jobs ?? []).map((r) => rowOf<Rows['jobs'][number]>(r)),
    tasks: (found.tasks ?? []).map((r) => rowOf<Rows['tasks'][number]>(r)),
    operations: (found.operations ?? []).map((r) => rowOf<Rows['operations'][number]>(r)),
  });
  if (eventId !== undefined) loaded.unsentOfEvent = dispatchesOfRows((found.unsent ?? []) as UndispatchedRow[]);
  const userId = event.userId ?? found.hosts.find((h) => h.id === event.hostId)?.owner_user_id ?? null;
  return focusNeedsWholePool(loaded.snapshot, typeof userId === 'string' ? userId : null) ? null : loaded;
}

type JsonRow = Record<string, unknown>;
type FocusedRows = { [K in keyof Rows]: JsonRow[] | null } & { unsent: JsonRow[] | null };

/**
 * $1 pool, $2 PC, $3 the sign-in's user (null: the PC's owner), $4 live task states, $5 the
 * event id (null: not asked) for its unsent operations. Rows as JSON.
 */
const FOCUSED_SQL = `
WITH pc AS (SELECT * FROM hosts WHERE id = $2::uuid AND pool_id = $1::uuid),
person AS (SELECT COALESCE($3::uuid, (SELECT owner_user_id FROM pc)) AS id),
vms AS (
  SELECT v.* FROM desktop_vms v
  WHERE v.pool_id = $1::uuid AND (v.owner_user_id = (SELECT id FROM person) OR v.current_host_id = $2::uuid OR v.source_host_id = $2::uuid)
),
named AS (
  SELECT unnest(ARRAY[current_host_id, source_host_id, saved_state_host_id]) AS id FROM vms WHERE owner_user_id = (SELECT id FROM person)
),
hs AS (SELECT * FROM pc UNION ALL SELECT h.* FROM hosts h WHERE h.pool_id = $1::uuid AND h.id <> $2::uuid AND h.id IN (SELECT id FROM named)),
ts AS (SELECT * FROM batch_tasks WHERE host_id = (SELECT id FROM pc) AND state::text = ANY($4::text[]))
SELECT
  (SELECT json_agg(p) FROM pools p WHERE p.id = $1::uuid) AS pools,
  (SELECT json_agg(hs) FROM hs) AS hosts,
  (SELECT json_agg(u) FROM users u WHERE u.id = (SELECT id FROM person) AND u.pool_id = $1::uuid) AS users,
  (SELECT json_agg(vms) FROM vms) AS vms,
  (SELECT json_agg(j) FROM batch_jobs j WHERE j.id IN (SELECT job_id FROM ts)) AS jobs,
  (SELECT json_agg(ts) FROM ts) AS tasks,
  (SELECT json_agg(o) FROM operations o WHERE o.host_id IN (SELECT id FROM hs) AND o.planned IS NOT NULL AND o.settled_at IS NULL) AS operations,
  (SELECT json_agg(u ORDER BY u.n) FROM (${undispatchedSql('$5::text')}) AS u WHERE $5::text IS NOT NULL) AS unsent`;

/** Columns whose JSON text is a timestamp (Prisma DateTime, or DateTime[] for arrivals). */
const TIMESTAMP_COLUMNS = new Set(['presence_since', 'last_heartbeat_at', 'created_at', 'updated_at', 'state_changed_at', 'pinned_until', 'deadline', 'cancel_requested_at', 'started_at', 'finished_at', 'settled_at', 'sent_at', 'arrivals']);

/** A row as Prisma returns it, from its JSON: field names as in schema.prisma, timestamps as Dates. */
function rowOf<T>(json: JsonRow): T {
  const out: Record<string, unknown> = {};
  for (const [column, value] of Object.entries(json)) {
    const field = column.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase()).replace(/Mib$/, 'MiB').replace(/Gib$/, 'GiB');
    if (TIMESTAMP_COLUMNS.has(column) && value !== null) out[field] = Array.isArray(value) ? value.map((v) => new Date(v as string)) : new Date(value as string);
    else out[field] = value;
  }
  return out as T;
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
