import { bringDesktopTo } from './desktop.js';
import type { PlanDraft } from './draft.js';
import { onReconciled } from './hosts.js';
import type { DesktopVm, Operation, SchedulerEvent } from './types.js';

type ResultEvent = Extract<SchedulerEvent, { type: 'operationResult' }>;

/** A person was waiting for this desktop elsewhere while it was busy: go there now. */
function followDesire(draft: PlanDraft, vmId: string, rule: string): void {
  const vm = draft.get('vms', vmId);
  if (!vm?.desiredHostId) return;
  const target = draft.get('hosts', vm.desiredHostId);
  if (!target) return;
  bringDesktopTo(draft, vm, target, { personPresent: target.presence === 'present' }, rule);
}

/** Desktops whose saved state sits on `hostId` and whose person waits elsewhere. */
function followDesiresWaitingOn(draft: PlanDraft, hostId: string): void {
  for (const vm of [...draft.all('vms')]) {
    if (vm.state === 'SUSPENDED' && vm.desiredHostId && vm.savedState?.kind === 'local' && vm.savedState.hostId === hostId) {
      followDesire(draft, vm.id, 'desktop.presenceWins');
    }
  }
}

function onDesktopResult(draft: PlanDraft, op: Operation, vm: DesktopVm, ok: boolean): void {
  const rule = `desktop.${op.type}.${ok ? 'succeeded' : 'failed'}`;
  switch (op.type) {
    case 'suspendDesktop': {
      if (vm.state !== 'SUSPENDING') return;
      if (ok) {
        const pool = draft.get('pools', vm.poolId);
        const savedState = pool?.policy.storageMode === 'shared' ? ({ kind: 'shared' } as const) : ({ kind: 'local', hostId: op.hostId } as const);
        draft.update('vms', vm.id, { state: 'SUSPENDED', hostId: null, savedState }, rule);
      } else draft.update('vms', vm.id, { state: 'RUNNING' }, rule);
      return followDesire(draft, vm.id, 'desktop.presenceWins');
    }
    case 'moveSavedState': {
      if (vm.state !== 'RESTORING' || !vm.hostId) return;
      if (!ok) {
        draft.update('vms', vm.id, { state: 'SUSPENDED', hostId: null }, rule);
        return;
      }
      const savedState = { kind: 'local', hostId: vm.hostId } as const;
      draft.update('vms', vm.id, { savedState }, rule);
      draft.command({ type: 'restoreDesktop', vmId: vm.id, hostId: vm.hostId, generation: vm.generation, from: savedState }, 'desktop.restoreAfterMove');
      return;
    }
    case 'restoreDesktop': {
      if (vm.state !== 'RESTORING') return;
      if (!ok) {
        draft.update('vms', vm.id, { state: vm.savedState ? 'SUSPENDED' : 'STOPPED', hostId: null }, rule);
        return;
      }
      draft.update('vms', vm.id, { state: 'RUNNING', savedState: null }, rule);
      // Saved state goes only now that a restore from it is confirmed.
      if (vm.savedState) {
        const holder = vm.savedState.kind === 'local' ? vm.savedState.hostId : op.hostId;
        draft.command({ type: 'deleteSavedState', vmId: vm.id, hostId: holder, generation: vm.generation, location: vm.savedState }, 'desktop.savedStateCleanup');
      }
      if (vm.desiredHostId && vm.desiredHostId !== vm.hostId) followDesire(draft, vm.id, 'desktop.presenceWins');
      return;
    }
    case 'migrateDesktop': {
      if (vm.state !== 'MIGRATING') return;
      if (ok) draft.update('vms', vm.id, { state: 'RUNNING', sourceHostId: null }, rule);
      else draft.update('vms', vm.id, { state: 'RUNNING', hostId: vm.sourceHostId, sourceHostId: null }, rule);
      return followDesire(draft, vm.id, 'desktop.presenceWins');
    }
    case 'hotplug': {
      if (!ok) {
        draft.reason('hotplugFailed', `Hot-plug on ${vm.id} failed; sizes stay as the agent reports them`, { kind: 'vms', id: vm.id });
        if (vm.augmented) draft.update('vms', vm.id, { augmented: null }, rule);
      }
      return;
    }
    default:
      return;
  }
}

function onTaskResult(draft: PlanDraft, op: Operation, ok: boolean): void {
  const task = draft.get('tasks', op.subject.id);
  if (!task) return;
  const job = draft.get('jobs', task.jobId);
  const rule = `batch.${op.type}.${ok ? 'succeeded' : 'failed'}`;
  switch (op.type) {
    case 'checkpointBatch': {
      if (task.state !== 'CHECKPOINTING') return;
      if (job?.cancelled) return void draft.update('tasks', task.id, { state: 'CANCELLED', hostId: null }, rule);
      if (ok) {
        const pool = draft.get('pools', draft.get('hosts', op.hostId)?.poolId ?? '');
        const checkpoint = pool?.policy.storageMode === 'local' ? ({ kind: 'local', hostId: op.hostId } as const) : ({ kind: 'shared' } as const);
        draft.update('tasks', task.id, { state: 'CHECKPOINTED', hostId: null, checkpoint }, rule);
      } else if (task.checkpoint) {
        // The agent stopped it after the grace; its previous checkpoint still holds.
        draft.update('tasks', task.id, { state: 'CHECKPOINTED', hostId: null }, rule);
      } else draft.update('tasks', task.id, { state: 'QUEUED', hostId: null, restarts: task.restarts + 1 }, rule);
      return;
    }
    case 'stopBatch': {
      if (task.state !== 'STOPPING') return;
      // Either way the old run is over (the agent kills it after a failed stop and the generation fences it).
      if (task.afterStop === 'cancel' || job?.cancelled) draft.update('tasks', task.id, { state: 'CANCELLED', hostId: null, afterStop: null }, rule);
      else draft.update('tasks', task.id, { state: 'QUEUED', hostId: null, afterStop: null, checkpoint: null, restarts: task.restarts + 1 }, rule);
      return;
    }
    case 'moveCheckpoint': {
      if (task.state !== 'RUNNING' || !task.hostId) return;
      // The checkpoint stays where it was (the source keeps its copy): a later round may resume it there.
      if (!ok) {
        // Not counted as an attempt: the task did not run. Said, so an operator sees a PC that cannot send its checkpoints.
        draft.update('tasks', task.id, { state: 'CHECKPOINTED', hostId: null }, rule);
        return draft.reason('checkpointMoveFailed', `The checkpoint of task ${task.id} could not be moved from ${op.hostId}; it stays there (check the agent's stateMover SSH identity)`, { kind: 'tasks', id: task.id });
      }
      const checkpoint = { kind: 'local', hostId: task.hostId } as const;
      draft.update('tasks', task.id, { checkpoint }, rule);
      draft.command({ type: 'resumeTask', taskId: task.id, hostId: task.hostId, generation: task.generation, resources: task.resources, from: checkpoint }, 'batch.resumeAfterMove');
      return;
    }
    case 'placeTask':
    case 'resumeTask': {
      if (ok || task.state !== 'RUNNING') return;
      const attempts = task.attempts + 1;
      if (attempts > (job?.maxRetries ?? 0)) draft.update('tasks', task.id, { state: 'FAILED', hostId: null, attempts }, rule);
      else draft.update('tasks', task.id, { state: task.checkpoint ? 'CHECKPOINTED' : 'QUEUED', hostId: null, attempts }, rule);
      return;
    }
    default:
      return;
  }
}

function onHostResult(draft: PlanDraft, op: Operation, event: ResultEvent): void {
  const ok = event.outcome === 'succeeded';
  const host = draft.get('hosts', op.subject.id);
  if (!host) return;
  const rule = `power.${op.type}.${event.outcome}`;
  if (op.type === 'sleepHost' && !ok) draft.update('hosts', host.id, { asleep: false }, rule);
  if (op.type === 'wakeHost' && ok && host.asleep) {
    draft.update('hosts', host.id, { asleep: false }, rule);
    followDesiresWaitingOn(draft, host.id);
  }
  if (op.type === 'wakeHost' && !ok) draft.reason('wakeFailed', `Wake-on-LAN for ${host.id} failed: check the BIOS setting and the peer's network`, { kind: 'hosts', id: host.id });
  if (op.type === 'reconcileHost') {
    if (ok) {
      onReconciled(draft, host.id, new Set(event.foundRunningVmIds ?? []), event.foundRunningTaskIds ? new Set(event.foundRunningTaskIds) : undefined);
      followDesiresWaitingOn(draft, host.id);
    }
    else draft.reason('reconcileFailed', `Reconcile of ${host.id} failed; it stays fenced until a reconcile succeeds (send hostBack again)`, { kind: 'hosts', id: host.id });
  }
}

function subjectGeneration(draft: PlanDraft, op: Operation): number | undefined {
  if (op.subject.kind === 'vm') return draft.get('vms', op.subject.id)?.generation;
  if (op.subject.kind === 'task') return draft.get('tasks', op.subject.id)?.generation;
  return op.generation;
}

/**
 * An agent answered a command. Answers to unknown operations (already handled) and to
 * superseded generations (the subject moved on, e.g. was marked LOST) change nothing.
 */
export function onOperationResult(draft: PlanDraft, event: ResultEvent): void {
  const op = draft.get('operations', event.operationId);
  if (!op) return draft.reason('unknownOperation', `Operation ${event.operationId} is not in flight (duplicate or fenced answer); ignored`);
  if (event.generation !== op.generation || subjectGeneration(draft, op) !== op.generation) {
    draft.remove('operations', op.id, 'fencing.staleResult');
    return draft.reason('staleResult', `Answer to ${op.id} carries a superseded generation; ignored`);
  }
  draft.remove('operations', op.id, `operation.${event.outcome}`);
  const ok = event.outcome === 'succeeded';
  if (op.subject.kind === 'vm') {
    const vm = draft.get('vms', op.subject.id);
    if (vm) onDesktopResult(draft, op, vm, ok);
  } else if (op.subject.kind === 'task') onTaskResult(draft, op, ok);
  else onHostResult(draft, op, event);
}
