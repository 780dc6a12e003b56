import { makeRoomForDesktop, yieldAllBatch } from './batch-yield.js';
import { hostUsableForDesktop, ownerExpectedSoon } from './capacity.js';
import { bringDesktopTo, desktopOfUser, suspendDesktop } from './desktop.js';
import { desktopFootprint, type PlanDraft } from './draft.js';
import { isNight } from './local-time.js';
import { wakeHost } from './power.js';
import type { Pool } from './types.js';

/** A desktop brought back by pre-staging is not idle-suspended before its person is due. */
function protectedByPreStaging(draft: PlanDraft, userId: string, pool: Pool): boolean {
  const user = draft.get('users', userId);
  const p = user?.preStage;
  return !!p && draft.now < p.predictedAt + pool.policy.idleThresholdMs;
}

/** Idle past the pool's threshold, inside the night window (or any time if the pool says): suspend. */
export function onIdleCheck(draft: PlanDraft): void {
  const rule = 'desktop.idleSuspend';
  for (const vm of draft.all('vms')) {
    if (vm.state !== 'RUNNING' || !vm.hostId) continue;
    const host = draft.get('hosts', vm.hostId);
    const pool = draft.get('pools', vm.poolId);
    if (!host || !pool || !host.online) continue;
    if (host.presence !== 'idle' || draft.now - host.presenceSince < pool.policy.idleThresholdMs) continue;
    const lt = draft.localTimeOfPool(pool.id);
    if (!pool.policy.suspendIdleAnyTime && !(lt && isNight(lt, pool.policy))) continue;
    if (vm.pinned) {
      draft.reason('pinned', `Desktop ${vm.id} is pinned ("keep running tonight"); not suspended`, { kind: 'vms', id: vm.id });
      continue;
    }
    if (protectedByPreStaging(draft, vm.ownerUserId, pool)) continue;
    suspendDesktop(draft, vm, rule);
  }
}

/**
 * Restore desktops shortly before their people usually arrive, paying for it in batch time
 * given up, within the pool's daily budget.
 */
export function onPreStageTick(draft: PlanDraft): void {
  const rule = 'prestage.beforeArrival';
  for (const user of draft.all('users')) {
    if (!user.homeHostId) continue;
    const pool = draft.get('pools', user.poolId);
    const host = draft.get('hosts', user.homeHostId);
    if (!pool?.policy.preStaging.enabled || !host || host.presence === 'present') continue;
    const lt = draft.localTimeOfPool(pool.id);
    if (!lt || user.preStage?.localDate === lt.date) continue;
    const predicted = draft.predictedArrival(user, pool.policy);
    const readyBy = draft.readyBy(user, pool.policy);
    if (predicted === null || readyBy === null || draft.now >= predicted || readyBy - draft.now > pool.policy.preStaging.leadMs) continue;
    const vm = desktopOfUser(draft, user.id);
    if (!vm || (vm.state !== 'SUSPENDED' && vm.state !== 'STOPPED')) continue;
    if (host.asleep || !host.online) {
      if (host.asleep) wakeHost(draft, host, 'power.wakeForPreStaging');
      continue;
    }
    if (!hostUsableForDesktop(host)) continue;
    // Cost: batch that must yield, times how long before the person would have made it yield anyway.
    const need = desktopFootprint(vm);
    let yieldedCores = 0;
    {
      const load = draft.loadOf(host.id);
      const free = host.resources.cores - load.desktops.cores - load.batchActive.cores;
      const freeMem = host.resources.memoryMiB - load.desktops.memoryMiB - load.batchActive.memoryMiB;
      if (free < need.cores || freeMem < need.memoryMiB) yieldedCores = load.batchActive.cores;
    }
    const cost = yieldedCores * (predicted - draft.now);
    const budget = pool.preStageBudget.localDate === lt.date ? pool.preStageBudget : { localDate: lt.date, usedCoreMs: 0 };
    if (budget.usedCoreMs + cost > pool.policy.preStaging.dailyBudgetCoreMs) {
      draft.reason('preStageBudget', `Pre-staging ${vm.id} would give up ${cost} core-ms of batch; over pool ${pool.id}'s daily budget`, { kind: 'vms', id: vm.id });
      continue;
    }
    const room = makeRoomForDesktop(draft, host, need, false, rule);
    if (!room.ok) continue;
    if (!bringDesktopTo(draft, draft.get('vms', vm.id) ?? vm, host, { personPresent: false }, rule)) continue;
    draft.update('pools', pool.id, { preStageBudget: { localDate: lt.date, usedCoreMs: budget.usedCoreMs + cost } }, rule);
    draft.update('users', user.id, { preStage: { localDate: lt.date, predictedAt: predicted, stagedAt: draft.now } }, rule);
  }
}

/** Before office hours and before predicted arrivals, batch leaves owned PCs. */
export function onMorningDrain(draft: PlanDraft): void {
  const rule = 'batch.morningDrain';
  for (const host of draft.all('hosts')) {
    if (!host.online || !host.ownerUserId) continue;
    const pool = draft.get('pools', host.poolId);
    if (!pool || !ownerExpectedSoon(draft, host, pool)) continue;
    if (draft.tasksOnHost(host.id).some((t) => t.state === 'RUNNING')) yieldAllBatch(draft, host, rule);
  }
}

