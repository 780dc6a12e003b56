import type { PlanDraft } from './draft.js';
import type { BatchTask, DesktopVm, Host } from './types.js';

/** Where a task starts again after losing its host: its last checkpoint if reachable, else zero. */
export function requeueAfterHostLoss(draft: PlanDraft, task: BatchTask, lostHostId: string, rule: string): void {
  const generation = task.generation + 1;
  if (task.state === 'STOPPING' && task.afterStop === 'cancel') {
    draft.update('tasks', task.id, { state: 'CANCELLED', hostId: null, generation, afterStop: null }, rule);
    return;
  }
  const cp = task.checkpoint;
  // A checkpoint being written when the host vanished is not trusted; an older one is.
  const usable = cp !== null && !(cp.kind === 'local' && cp.hostId === lostHostId);
  if (usable) draft.update('tasks', task.id, { state: 'CHECKPOINTED', hostId: null, generation, afterStop: null }, rule);
  else draft.update('tasks', task.id, { state: 'QUEUED', hostId: null, generation, afterStop: null, checkpoint: null, restarts: task.restarts + 1 }, rule);
}

/**
 * A host stopped answering. Its desktops become LOST under a new generation, so commands
 * the host may still act on are refused; its batch work is requeued; it must be reconciled
 * before it may start anything again.
 */
export function onHeartbeatLost(draft: PlanDraft, hostId: string): void {
  const rule = 'fencing.heartbeatLost';
  const host = draft.get('hosts', hostId);
  if (!host) return draft.reason('unknownHost', `No host ${hostId}`);
  if (!host.online && host.needsReconcile) return;
  draft.update('hosts', host.id, { online: false, needsReconcile: true, presence: 'unknown', presenceSince: draft.now }, rule);
  for (const vm of draft.vmsOnHost(host.id)) {
    if (vm.state === 'LOST') continue;
    const generation = vm.generation + 1;
    // Lost mid-migration: it may be on either end, so both stay possible until reconciled.
    const otherEnd = vm.state === 'MIGRATING' ? (vm.hostId === host.id ? vm.sourceHostId : vm.hostId) : null;
    draft.update('vms', vm.id, { state: 'LOST', hostId: host.id, sourceHostId: otherEnd, generation }, rule);
    draft.emit({ type: 'markLost', key: `${draft.event.id}/markLost/${vm.id}/g${generation}`, cause: draft.cause(rule), vmId: vm.id, lastHostId: host.id, generation });
    if (otherEnd) {
      const other = draft.get('hosts', otherEnd);
      if (other?.online && !other.needsReconcile) requestReconcile(draft, other, rule);
    }
  }
  for (const task of draft.tasksOnHost(host.id)) requeueAfterHostLoss(draft, task, host.id, rule);
  for (const op of draft.all('operations')) if (op.hostId === host.id) draft.remove('operations', op.id, rule);
}

/** What a host may keep: desktops (running or saved) and checkpoints the snapshot places there. */
export function requestReconcile(draft: PlanDraft, host: Host, rule: string): void {
  const vms: { vmId: string; generation: number }[] = [];
  for (const vm of draft.all('vms')) {
    const runsHere = vm.hostId === host.id || vm.sourceHostId === host.id;
    const savedHere = vm.savedState?.kind === 'local' && vm.savedState.hostId === host.id;
    if ((runsHere && vm.state !== 'SUSPENDED' && vm.state !== 'STOPPED') || savedHere) vms.push({ vmId: vm.id, generation: vm.generation });
  }
  const tasks: { taskId: string; generation: number }[] = [];
  for (const t of draft.all('tasks')) {
    if (t.hostId === host.id || (t.checkpoint?.kind === 'local' && t.checkpoint.hostId === host.id)) tasks.push({ taskId: t.id, generation: t.generation });
  }
  vms.sort((a, b) => (a.vmId < b.vmId ? -1 : 1));
  tasks.sort((a, b) => (a.taskId < b.taskId ? -1 : 1));
  draft.command({ type: 'reconcileHost', hostId: host.id, generation: 0, expect: { vms, tasks } }, rule);
}

export function onHostBack(draft: PlanDraft, hostId: string): void {
  const rule = 'fencing.reconcileBeforeStart';
  const host = draft.get('hosts', hostId);
  if (!host) return draft.reason('unknownHost', `No host ${hostId}`);
  if (host.online && !host.needsReconcile) {
    // A PC we put to sleep woke up on its own (timer, button) and reconnected: it is usable again.
    if (host.asleep) draft.update('hosts', host.id, { asleep: false }, 'power.wokeUp');
    return;
  }
  const back = draft.update('hosts', host.id, { online: true, asleep: false, needsReconcile: true }, rule);
  if (draft.operationsOn('host', host.id).some((op) => op.type === 'reconcileHost')) return;
  requestReconcile(draft, back, rule);
}

/** Drops `hostId` from where a LOST desktop may be; with nowhere left it is STOPPED. */
function ruleOutLocation(draft: PlanDraft, vm: DesktopVm, hostId: string, rule: string): void {
  const remaining = [vm.hostId, vm.sourceHostId].filter((h): h is string => h !== null && h !== hostId);
  if (remaining.length === 0) draft.update('vms', vm.id, { state: 'STOPPED', hostId: null, sourceHostId: null }, rule);
  else draft.update('vms', vm.id, { hostId: remaining[0] ?? null, sourceHostId: null }, rule);
}

/** An admin confirmed the host is off: its LOST desktops are not running there. */
export function onHostFenced(draft: PlanDraft, hostId: string): void {
  const rule = 'fencing.adminFenced';
  const host = draft.get('hosts', hostId);
  if (!host) return draft.reason('unknownHost', `No host ${hostId}`);
  if (host.online) {
    draft.reason('hostOnline', `Host ${hostId} is online; fence only a host that is powered off`, { kind: 'hosts', id: hostId });
    return;
  }
  for (const vm of draft.vmsOnHost(host.id)) if (vm.state === 'LOST') ruleOutLocation(draft, vm, host.id, rule);
}

/** The agent destroyed what it may not keep and told us what desktops it found running. */
export function onReconciled(draft: PlanDraft, hostId: string, foundRunning: ReadonlySet<string>): void {
  const rule = 'fencing.reconciled';
  const host = draft.get('hosts', hostId);
  if (!host) return;
  draft.update('hosts', host.id, { needsReconcile: false }, rule);
  for (const vm of draft.vmsOnHost(host.id)) {
    if (vm.state !== 'LOST') continue;
    if (foundRunning.has(vm.id)) draft.update('vms', vm.id, { state: 'RUNNING', hostId: host.id, sourceHostId: null }, rule);
    else ruleOutLocation(draft, vm, host.id, rule);
  }
}
