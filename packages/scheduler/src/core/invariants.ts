import { desktopFootprint, DESKTOP_HOLDING_STATES } from './draft.js';
import { scaleCompute } from './resources.js';
import type { Snapshot } from './types.js';

export interface InvariantViolation {
  invariant: string;
  subject: string;
  detail: string;
}

/**
 * Invariants that must hold for any snapshot the core produced. Used by the property tests,
 * and cheap enough for a runtime or chaos run to assert after every commit.
 */
export function checkInvariants(s: Snapshot): InvariantViolation[] {
  const out: InvariantViolation[] = [];
  const used = new Map<string, { cores: number; memoryMiB: number; diskGiB: number; gpus: number; batchCores: number; batchMemoryMiB: number }>();
  const use = (hostId: string) => {
    let u = used.get(hostId);
    if (!u) used.set(hostId, (u = { cores: 0, memoryMiB: 0, diskGiB: 0, gpus: 0, batchCores: 0, batchMemoryMiB: 0 }));
    return u;
  };

  for (const vm of Object.values(s.vms)) {
    const holds = DESKTOP_HOLDING_STATES.has(vm.state);
    if (holds && !vm.hostId) out.push({ invariant: 'desktop.hasHost', subject: vm.id, detail: `${vm.state} without a host` });
    if (!holds && vm.hostId) out.push({ invariant: 'desktop.noHost', subject: vm.id, detail: `${vm.state} still names host ${vm.hostId}` });
    if (vm.state === 'SUSPENDED' && !vm.savedState) out.push({ invariant: 'desktop.savedState', subject: vm.id, detail: 'SUSPENDED without saved state' });
    if (vm.state === 'MIGRATING' && (!vm.sourceHostId || vm.sourceHostId === vm.hostId)) out.push({ invariant: 'desktop.migration', subject: vm.id, detail: 'MIGRATING without a distinct source' });
    if (vm.state === 'RUNNING' && vm.hostId && !s.hosts[vm.hostId]?.online) out.push({ invariant: 'desktop.runsOnOnlineHost', subject: vm.id, detail: `RUNNING on offline ${vm.hostId}` });
    if (!holds) continue;
    const f = desktopFootprint(vm);
    for (const h of new Set([vm.hostId, vm.state === 'MIGRATING' || vm.state === 'LOST' ? vm.sourceHostId : null])) {
      if (!h) continue;
      const u = use(h);
      u.cores += f.cores;
      u.memoryMiB += f.memoryMiB;
      u.diskGiB += f.diskGiB;
      u.gpus += f.gpus;
    }
  }

  for (const t of Object.values(s.tasks)) {
    const onHost = t.state === 'RUNNING' || t.state === 'CHECKPOINTING' || t.state === 'STOPPING';
    if (onHost !== (t.hostId !== null)) out.push({ invariant: 'task.hostMatchesState', subject: t.id, detail: `${t.state} with host ${t.hostId}` });
    if (t.state === 'RUNNING' && t.hostId) {
      const host = s.hosts[t.hostId];
      // Offline or unreconciled is allowed only for a task held since its host was lost.
      if (!host || host.asleep || (!host.online && !host.needsReconcile)) out.push({ invariant: 'task.runsOnUsableHost', subject: t.id, detail: `RUNNING on ${t.hostId}, which is missing, asleep or offline without being held for reconcile` });
      const u = use(t.hostId);
      u.cores += t.resources.cores;
      u.memoryMiB += t.resources.memoryMiB;
      u.diskGiB += t.resources.diskGiB;
      u.gpus += t.resources.gpus;
      u.batchCores += t.resources.cores;
      u.batchMemoryMiB += t.resources.memoryMiB;
    }
  }

  for (const [hostId, u] of used) {
    const host = s.hosts[hostId];
    // A snapshot scoped to some pools may show a task running on a PC outside them.
    if (!host) continue;
    const r = host.resources;
    if (u.cores > r.cores || u.memoryMiB > r.memoryMiB || u.diskGiB > r.diskGiB || u.gpus > r.gpus) {
      out.push({ invariant: 'host.notOvercommitted', subject: hostId, detail: `uses ${JSON.stringify(u)} of ${JSON.stringify(r)}` });
    }
    const pool = s.pools[host.poolId];
    if (pool && host.presence === 'present') {
      const cap = scaleCompute(r, pool.policy.maxBatchShareWhileOwnerPresent);
      if (u.batchCores > cap.cores || u.batchMemoryMiB > cap.memoryMiB) out.push({ invariant: 'host.ownerShare', subject: hostId, detail: `batch ${u.batchCores} cores/${u.batchMemoryMiB} MiB over share while owner present` });
    }
  }

  for (const op of Object.values(s.operations)) {
    const table = op.subject.kind === 'vm' ? s.vms : op.subject.kind === 'task' ? s.tasks : s.hosts;
    if (!table[op.subject.id]) out.push({ invariant: 'operation.subjectExists', subject: op.id, detail: `subject ${op.subject.kind} ${op.subject.id} missing` });
  }
  return out;
}
