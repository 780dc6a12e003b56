import { makeRoomForDesktop } from './batch-yield.js';
import { hostUsableForDesktop } from './capacity.js';
import { desktopFootprint, type PlanDraft } from './draft.js';
import { localTime } from './local-time.js';
import { wakeHost } from './power.js';
import { arrivedToday } from './prediction.js';
import type { DesktopVm, Host, SavedStateLocation, User } from './types.js';

export function desktopOfUser(draft: PlanDraft, userId: string): DesktopVm | undefined {
  let found: DesktopVm | undefined;
  for (const vm of draft.all('vms')) if (vm.ownerUserId === userId && (!found || vm.id < found.id)) found = vm;
  return found;
}

function savedStateReachable(draft: PlanDraft, loc: SavedStateLocation): boolean {
  if (loc.kind === 'shared') return true;
  const h = draft.get('hosts', loc.hostId);
  return h !== undefined && h.online && !h.needsReconcile && !h.asleep;
}

export interface BringOptions {
  /** The person is at `host` now (a tap or sign-in), rather than expected (pre-staging). */
  personPresent: boolean;
}

/**
 * A person wants `vm` at `host` (tap at home, sign-in elsewhere, pre-staging): run it there
 * by the quickest path its state allows. Batch on the host yields in the same plan, and the
 * desktop command follows at once, ordered after the yields on the agent.
 */
export function bringDesktopTo(draft: PlanDraft, vm: DesktopVm, host: Host, opts: BringOptions, rule: string): boolean {
  const subject = { kind: 'vms' as const, id: vm.id };
  if (vm.state === 'RUNNING' && vm.hostId === host.id) {
    if (vm.desiredHostId) draft.update('vms', vm.id, { desiredHostId: null }, rule);
    return true;
  }
  if (vm.state === 'SUSPENDING' || vm.state === 'RESTORING' || vm.state === 'MIGRATING' || vm.state === 'LOST') {
    if (vm.hostId === host.id && vm.state !== 'SUSPENDING' && vm.state !== 'LOST') return true;
    if (vm.desiredHostId !== host.id) draft.update('vms', vm.id, { desiredHostId: host.id }, rule);
    draft.reason('desktopBusy', `Desktop ${vm.id} is ${vm.state}; it goes to ${host.id} as soon as that finishes`, subject);
    return false;
  }
  if (!hostUsableForDesktop(host)) {
    draft.reason('hostUnavailable', `Host ${host.id} is offline, asleep or not reconciled; desktop ${vm.id} stays put`, subject);
    return false;
  }
  const pool = draft.get('pools', host.poolId);
  if (!pool || pool.id !== vm.poolId) {
    draft.reason('wrongPool', `Host ${host.id} is not in the pool of desktop ${vm.id}`, subject);
    return false;
  }
  if (vm.state === 'STOPPED' && pool.policy.storageMode === 'local' && vm.savedState === null) {
    const home = draft.get('users', vm.ownerUserId)?.homeHostId;
    if (home && home !== host.id) {
      draft.reason('diskIsLocal', `Desktop ${vm.id} is stopped and its disk lives on ${home}; boot it there`, subject);
      return false;
    }
  }
  if (vm.state === 'SUSPENDED' && vm.savedState && !savedStateReachable(draft, vm.savedState)) {
    draft.update('vms', vm.id, { desiredHostId: host.id }, rule);
    const holder = vm.savedState.kind === 'local' ? draft.get('hosts', vm.savedState.hostId) : undefined;
    if (holder?.asleep) wakeHost(draft, holder, 'power.wakeForSavedState');
    draft.reason('savedStateUnreachable', `Saved state of ${vm.id} is on a host that is not reachable; waiting for it`, subject);
    return false;
  }
  const room = makeRoomForDesktop(draft, host, desktopFootprint(vm), opts.personPresent, rule);
  if (!room.ok) {
    draft.reason('noRoomForDesktop', `Host ${host.id} has no room for desktop ${vm.id} even without batch work`, subject);
    return false;
  }
  const generation = vm.generation + 1;
  if (vm.state === 'RUNNING' && vm.hostId) {
    draft.update('vms', vm.id, { state: 'MIGRATING', sourceHostId: vm.hostId, hostId: host.id, generation, desiredHostId: null }, rule);
    draft.command({ type: 'migrateDesktop', vmId: vm.id, hostId: host.id, fromHostId: vm.hostId, generation, after: room.keys }, rule);
    return true;
  }
  const saved = vm.state === 'SUSPENDED' ? vm.savedState : null;
  draft.update('vms', vm.id, { state: 'RESTORING', hostId: host.id, sourceHostId: null, generation, desiredHostId: null }, rule);
  if (saved && saved.kind === 'local' && saved.hostId !== host.id) {
    // The restore is sent when the move is confirmed (see results); the yields run meanwhile.
    draft.command({ type: 'moveSavedState', vmId: vm.id, hostId: saved.hostId, fromHostId: saved.hostId, toHostId: host.id, generation }, rule);
    return true;
  }
  draft.command({ type: 'restoreDesktop', vmId: vm.id, hostId: host.id, generation, from: saved ?? { kind: 'coldBoot' }, after: room.keys }, rule);
  return true;
}

/** Idle desktop goes to disk. Hot-added resources are given back first. */
export function suspendDesktop(draft: PlanDraft, vm: DesktopVm, rule: string): void {
  if (vm.state !== 'RUNNING' || !vm.hostId || vm.pinned) return;
  const pool = draft.get('pools', vm.poolId);
  if (!pool) return;
  const after: string[] = [];
  if (vm.augmented) after.push(undoAugment(draft, vm, rule));
  const generation = vm.generation + 1;
  const saveTo: SavedStateLocation = pool.policy.storageMode === 'shared' ? { kind: 'shared' } : { kind: 'local', hostId: vm.hostId };
  draft.update('vms', vm.id, { state: 'SUSPENDING', generation }, rule);
  draft.command({ type: 'suspendDesktop', vmId: vm.id, hostId: vm.hostId, generation, saveTo, after }, rule);
}

export function undoAugment(draft: PlanDraft, vm: DesktopVm, rule: string): string {
  if (!vm.augmented || !vm.hostId) throw new Error(`Planning bug: undo augment of ${vm.id} without augment`);
  const { cores, memoryMiB } = vm.augmented;
  draft.update('vms', vm.id, { augmented: null }, rule);
  return draft.command({ type: 'hotplug', vmId: vm.id, hostId: vm.hostId, generation: vm.generation, addCores: -cores, addMemoryMiB: -memoryMiB, undo: true }, rule).key;
}

/**
 * First tap of the local day: remember it for future predictions and report how the
 * prediction did.
 */
export function recordArrival(draft: PlanDraft, user: User, desktopWasRunning: boolean, rule: string): void {
  const pool = draft.get('pools', user.poolId);
  if (!pool || arrivedToday(user, pool.policy, draft.now)) return;
  const today = localTime(draft.now, pool.policy.timeZone).date;
  const predictedAt = user.preStage && user.preStage.localDate === today ? user.preStage.predictedAt : null;
  // Only the weeks the predictor looks at are kept, so the history stays small.
  const horizon = draft.now - (pool.policy.preStaging.historyWeeks + 1) * 7 * 24 * 3600_000;
  draft.update('users', user.id, { arrivals: [...user.arrivals.filter((a) => a >= horizon), draft.now] }, rule);
  draft.emit({
    type: 'reportArrival',
    key: `${draft.event.id}/arrival/${user.id}`,
    cause: draft.cause(rule),
    userId: user.id,
    predictedAt,
    actualAt: draft.now,
    desktopWasRunning,
  });
}
