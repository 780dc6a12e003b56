// Database rows to the response shapes in @deskpool/protocol (timestamps as ISO strings,
// bigints as decimal strings, secrets and hashes never included).
import type { ApiToken, AuditEvent, BatchJob, BatchTask, DesktopVm, EnrollmentToken, Host, Pool, User } from '@deskpool/db';
import type {
  ApiTokenView,
  AuditEventView,
  EnrollmentTokenView,
  HostView,
  JobView,
  PoolView,
  TaskView,
  UserView,
  VmView,
} from '@deskpool/protocol';

const iso = (d: Date): string => d.toISOString();
const isoOrNull = (d: Date | null): string | null => (d === null ? null : d.toISOString());

export function presentPool(p: Pool): PoolView {
  return {
    id: p.id,
    name: p.name,
    description: p.description,
    timeZone: p.timeZone,
    officeDays: p.officeDays,
    officeHoursStart: p.officeHoursStart,
    officeHoursEnd: p.officeHoursEnd,
    idleThresholdMinutes: p.idleThresholdMinutes,
    nightWindowStart: p.nightWindowStart,
    nightWindowEnd: p.nightWindowEnd,
    batchAllowed: p.batchAllowed,
    maxBatchPercentOwnerPresent: p.maxBatchPercentOwnerPresent,
    preStaging: p.preStaging,
    powerManagement: p.powerManagement,
    storageMode: p.storageMode,
    checkpointGraceSeconds: p.checkpointGraceSeconds,
    version: p.version,
    createdAt: iso(p.createdAt),
    updatedAt: iso(p.updatedAt),
  };
}

export function presentHost(h: Host): HostView {
  return {
    id: h.id,
    name: h.name,
    poolId: h.poolId,
    ownerUserId: h.ownerUserId,
    mac: h.mac,
    cores: h.cores,
    memoryMiB: h.memoryMiB,
    diskGiB: h.diskGiB,
    gpu: h.gpu,
    labels: h.labels,
    inventory: h.inventory,
    agentVersion: h.agentVersion,
    state: h.onlineState,
    presence: h.presenceState,
    presenceSince: isoOrNull(h.presenceSince),
    drained: h.drained,
    lastHeartbeatAt: isoOrNull(h.lastHeartbeatAt),
    fencingEpoch: h.fencingEpoch,
    needsReconcile: h.needsReconcile,
    asleep: h.asleep,
    version: h.version,
    createdAt: iso(h.createdAt),
    updatedAt: iso(h.updatedAt),
  };
}

export function presentUser(u: User): UserView {
  return {
    id: u.id,
    name: u.name,
    displayName: u.displayName,
    role: u.role,
    poolId: u.poolId,
    homeHostId: u.homeHostId,
    version: u.version,
    createdAt: iso(u.createdAt),
    updatedAt: iso(u.updatedAt),
  };
}

export function presentApiToken(t: ApiToken): ApiTokenView {
  return {
    id: t.id,
    name: t.name,
    role: t.role,
    userId: t.userId,
    createdAt: iso(t.createdAt),
    lastUsedAt: isoOrNull(t.lastUsedAt),
    revokedAt: isoOrNull(t.revokedAt),
  };
}

export function presentEnrollmentToken(t: EnrollmentToken): EnrollmentTokenView {
  return {
    id: t.id,
    poolId: t.poolId,
    note: t.note,
    createdBy: t.createdBy,
    createdAt: iso(t.createdAt),
    expiresAt: iso(t.expiresAt),
    usedAt: isoOrNull(t.usedAt),
    usedByHostId: t.usedByHostId,
    revokedAt: isoOrNull(t.revokedAt),
  };
}

export function presentVm(v: DesktopVm): VmView {
  return {
    id: v.id,
    name: v.name,
    ownerUserId: v.ownerUserId,
    poolId: v.poolId,
    vcpus: v.vcpus,
    memoryMiB: v.memoryMiB,
    maxVcpus: v.maxVcpus,
    maxMemoryMiB: v.maxMemoryMiB,
    diskGiB: v.diskGiB,
    diskLocation: v.diskLocation,
    state: v.state,
    pinned: v.pinned,
    pinnedUntil: isoOrNull(v.pinnedUntil),
    currentHostId: v.currentHostId,
    savedStateHostId: v.savedStateHostId,
    savedStatePath: v.savedStatePath,
    fencingGeneration: v.fencingGeneration,
    sourceHostId: v.sourceHostId,
    desiredHostId: v.desiredHostId,
    augmentedVcpus: v.augmentedVcpus,
    augmentedMemoryMiB: v.augmentedMemoryMiB,
    stateChangedAt: iso(v.stateChangedAt),
    version: v.version,
    createdAt: iso(v.createdAt),
    updatedAt: iso(v.updatedAt),
  };
}

export function presentTask(t: BatchTask): TaskView {
  return {
    id: t.id,
    index: t.index,
    state: t.state,
    hostId: t.hostId,
    attempts: t.attempts,
    checkpointHostId: t.checkpointHostId,
    checkpointPath: t.checkpointPath,
    progress: t.progress,
    exitStatus: t.exitStatus,
    output: t.output,
    generation: t.generation,
    startedAt: isoOrNull(t.startedAt),
    finishedAt: isoOrNull(t.finishedAt),
    updatedAt: iso(t.updatedAt),
  };
}

export function presentJob(j: BatchJob, taskStates: Record<string, number>): JobView {
  return {
    id: j.id,
    name: j.name,
    state: j.state,
    priority: j.priority,
    taskCount: j.taskCount,
    submitterUserId: j.submitterUserId,
    submittedBy: j.submittedBy,
    poolId: j.poolId,
    spec: j.spec,
    deadline: isoOrNull(j.deadline),
    cancelRequestedAt: isoOrNull(j.cancelRequestedAt),
    startedAt: isoOrNull(j.startedAt),
    finishedAt: isoOrNull(j.finishedAt),
    taskStates,
    version: j.version,
    createdAt: iso(j.createdAt),
    updatedAt: iso(j.updatedAt),
  };
}

export function presentAuditEvent(e: AuditEvent): AuditEventView {
  return {
    id: e.id.toString(),
    at: iso(e.at),
    entityType: e.entityType,
    entityId: e.entityId,
    action: e.action,
    actor: e.actor,
    cause: e.cause,
    before: e.before,
    after: e.after,
  };
}
