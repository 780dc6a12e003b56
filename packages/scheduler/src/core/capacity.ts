import type { PlanDraft } from './draft.js';
import { isOfficeTime } from './local-time.js';
import { fits, minResources, NO_RESOURCES, scaleCompute, subtractResources } from './resources.js';
import type { Host, Pool, Resources } from './types.js';

/**
 * Room for a desktop on `host`: batch that is already yielding does not count, because a
 * person's desktop never waits for batch (the agent finishes the yield before the restore).
 */
export function desktopRoom(draft: PlanDraft, host: Host): Resources {
  const load = draft.loadOf(host.id);
  return subtractResources(subtractResources(host.resources, load.desktops), load.batchActive);
}

/** Room for new batch work on `host`, including the owner-present share limit. */
export function batchRoom(draft: PlanDraft, host: Host, pool: Pool): Resources {
  const load = draft.loadOf(host.id);
  if (host.presence !== 'present' && load.desktops === NO_RESOURCES && load.batchActive === NO_RESOURCES && load.batchYielding === NO_RESOURCES) return host.resources;
  const batchHeld = { ...load.batchActive };
  batchHeld.cores += load.batchYielding.cores;
  batchHeld.memoryMiB += load.batchYielding.memoryMiB;
  batchHeld.diskGiB += load.batchYielding.diskGiB;
  batchHeld.gpus += load.batchYielding.gpus;
  const physical = subtractResources(subtractResources(host.resources, load.desktops), batchHeld);
  if (host.presence !== 'present') return physical;
  const shareCap = subtractResources(scaleCompute(host.resources, pool.policy.maxBatchShareWhileOwnerPresent), batchHeld);
  return minResources(physical, shareCap);
}

/** Batch may run in this pool at this moment (time-of-day rule only). */
export function poolAllowsBatchNow(draft: PlanDraft, pool: Pool): boolean {
  const window = pool.policy.batchWindow;
  if (window === 'never') return false;
  if (window === 'always') return true;
  const lt = draft.localTimeOfPool(pool.id);
  return lt !== undefined && !isOfficeTime(lt, pool.policy);
}

/** The host's owner is due within the morning-drain lead (office start or predicted arrival). */
export function ownerExpectedSoon(draft: PlanDraft, host: Host, pool: Pool): boolean {
  if (!host.ownerUserId || host.presence === 'present') return false;
  const lead = pool.policy.morningDrainLeadMs;
  const lt = draft.localTimeOfPool(pool.id);
  if (lt && pool.policy.officeHours.days.includes(lt.weekday)) {
    const [h, m] = pool.policy.officeHours.start.split(':').map(Number);
    const startMinute = (h ?? 0) * 60 + (m ?? 0);
    const minutesToStart = startMinute - lt.minuteOfDay;
    if (minutesToStart > 0 && minutesToStart * 60_000 <= lead) return true;
  }
  const user = draft.get('users', host.ownerUserId);
  if (!user) return false;
  const predicted = draft.predictedArrival(user, pool.policy);
  const readyBy = draft.readyBy(user, pool.policy);
  return predicted !== null && readyBy !== null && draft.now < predicted && readyBy - draft.now <= lead;
}

/** Feasibility of a host for any batch work, before looking at a task. */
export function hostAcceptsBatch(draft: PlanDraft, host: Host, pool: Pool): boolean {
  return (
    host.online &&
    !host.needsReconcile &&
    !host.draining &&
    !host.asleep &&
    poolAllowsBatchNow(draft, pool) &&
    !ownerExpectedSoon(draft, host, pool)
  );
}

export function hostUsableForDesktop(host: Host): boolean {
  return host.online && !host.needsReconcile && !host.asleep;
}

export function desktopFits(draft: PlanDraft, host: Host, need: Resources): boolean {
  return fits(need, desktopRoom(draft, host));
}
