import type { PlanDraft } from './draft.js';
import { onPresent } from './presence.js';
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
 * A task on a host that went silent stays where it is: the PC may be cut off but alive and
 * still running it, and nothing tells us otherwise until it is reconciled or an admin fences
 * it. Starting it elsewhere now could run it twice at once (invariant 3). Only a task that
 * was being stopped to be cancelled ends here: it is not to run anywhere again.
 */
function holdTaskOnLostHost(draft: PlanDraft, task: BatchTask, rule: string): void {
  if (task.state === 'STOPPING' && task.afterStop === 'cancel') {
    draft.update('tasks', task.id, { state: 'CANCELLED', hostId: null, generation: task.generation + 1, afterStop: null }, rule);
    return;
  }
  draft.reason('taskHeldOnLostHost', `Task ${task.id} stays on lost host ${task.hostId ?? '?'} until the host is reconciled or fenced by an admin`, { kind: 'tasks', id: task.id });
}

/**
 * A host stopped answering. Its desktops become LOST under a new generation, so commands
 * the host may still act on are refused; its batch tasks are held there (never started
 * elsewhere while the host could still run them); it must be reconciled before it may start
 * anything again. `treatAsFenced` is the test-only broken build: it skips the wait.
 */
export function onHeartbeatLost(draft: PlanDraft, hostId: string, treatAsFenced = false): void {
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
  for (const task of draft.tasksOnHost(host.id)) holdTaskOnLostHost(draft, task, rule);
  for (const op of draft.all('operations')) if (op.hostId === host.id) draft.remove('operations', op.id, rule);
  if (treatAsFenced) onHostFenced(draft, host.id, 'unsafe.testOnlyNoFenceWait');
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
    // A yield cut off by the host's loss is not resumed: its VM is stopped here and the task
    // requeued once the reconcile confirms it (onReconciled).
    const heldMidYield = host.needsReconcile && t.hostId === host.id && t.state !== 'RUNNING' && draft.operationsOn('task', t.id).length === 0;
    if (heldMidYield) continue;
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

/** An admin confirmed the host is off: its LOST desktops and held tasks are not running there. */
export function onHostFenced(draft: PlanDraft, hostId: string, rule = 'fencing.adminFenced'): void {
  const host = draft.get('hosts', hostId);
  if (!host) return draft.reason('unknownHost', `No host ${hostId}`);
  if (host.online) {
    draft.reason('hostOnline', `Host ${hostId} is online; fence only a host that is powered off`, { kind: 'hosts', id: hostId });
    return;
  }
  for (const vm of draft.vmsOnHost(host.id)) if (vm.state === 'LOST') ruleOutLocation(draft, vm, host.id, rule);
  for (const task of draft.tasksOnHost(host.id)) requeueAfterHostLoss(draft, task, host.id, rule);
}

/**
 * The agent destroyed what it may not keep and told us which desktops and tasks it found
 * running. `foundRunningTasks` undefined: the answer did not say (an older agent), so held
 * tasks stay held rather than risk starting one that still runs here.
 */
export function onReconciled(draft: PlanDraft, hostId: string, foundRunning: ReadonlySet<string>, foundRunningTasks?: ReadonlySet<string>): void {
  const rule = 'fencing.reconciled';
  const host = draft.get('hosts', hostId);
  if (!host) return;
  const wasLost = host.needsReconcile;
  draft.update('hosts', host.id, { needsReconcile: false }, rule);
  // Only a host coming back from a loss holds tasks; a reconcile of a live host (the other
  // end of a lost migration) leaves its tasks and their commands alone.
  if (wasLost) releaseHeldTasks(draft, host.id, foundRunningTasks, rule);
  for (const vm of draft.vmsOnHost(host.id)) {
    if (vm.state !== 'LOST') continue;
    if (foundRunning.has(vm.id)) draft.update('vms', vm.id, { state: 'RUNNING', hostId: host.id, sourceHostId: null }, rule);
    else ruleOutLocation(draft, vm, host.id, rule);
  }
  // A person who tapped while the PC was cut off was not served then (nothing may start on a
  // PC before its reconcile); the presence the PC reported is acted on now.
  const now = draft.get('hosts', host.id);
  if (wasLost && now?.presence === 'present' && now.ownerUserId) onPresent(draft, host.id);
}

/**
 * Held tasks after a confirmed reconcile: a running one the agent found keeps running (no work
 * lost); any other is not running there any more (the reconcile stopped what it did not list),
 * so it is requeued, from its checkpoint where one is usable.
 */
function releaseHeldTasks(draft: PlanDraft, hostId: string, foundRunningTasks: ReadonlySet<string> | undefined, rule: string): void {
  for (const task of draft.tasksOnHost(hostId)) {
    if (task.state === 'RUNNING' && (foundRunningTasks === undefined || foundRunningTasks.has(task.id))) {
      if (foundRunningTasks === undefined) draft.reason('reconcileWithoutTasks', `Reconcile of ${hostId} did not say which tasks run there; task ${task.id} stays held`, { kind: 'tasks', id: task.id });
      continue;
    }
    // A yield ordered since the host came back is still in flight: its answer decides.
    if (task.state !== 'RUNNING' && draft.operationsOn('task', task.id).length > 0) continue;
    requeueAfterHostLoss(draft, task, hostId, rule);
  }
}
