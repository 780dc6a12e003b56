import { hostAcceptsBatch, ownerExpectedSoon, poolAllowsBatchNow } from './capacity.js';
import type { PlanDraft } from './draft.js';
import type { Host } from './types.js';

function peerFor(draft: PlanDraft, host: Host): Host | undefined {
  let best: Host | undefined;
  for (const h of draft.all('hosts')) {
    if (h.poolId !== host.poolId || h.id === host.id || !h.online || h.asleep || h.needsReconcile) continue;
    if (!best || h.id < best.id) best = h;
  }
  return best;
}

/** Wake-on-LAN goes through an awake PC on the same network (the pool). */
export function wakeHost(draft: PlanDraft, host: Host, rule: string): boolean {
  if (draft.operationsOn('host', host.id).some((op) => op.type === 'wakeHost')) return true;
  const peer = peerFor(draft, host);
  if (!peer) {
    draft.reason('noWakePeer', `No awake PC in pool ${host.poolId} to send Wake-on-LAN to ${host.id}`, { kind: 'hosts', id: host.id });
    return false;
  }
  draft.command({ type: 'wakeHost', hostId: peer.id, targetHostId: host.id, generation: 0 }, rule);
  return true;
}

function hostIsEmpty(draft: PlanDraft, host: Host): boolean {
  return draft.vmsOnHost(host.id).length === 0 && draft.tasksOnHost(host.id).length === 0 && draft.operationsOn('host', host.id).length === 0;
}

/**
 * Sleep PCs with nothing to do; wake sleeping ones when queued batch work has nowhere to go.
 */
export function onPowerTick(draft: PlanDraft): void {
  let pendingCores = 0;
  for (const t of draft.all('tasks')) if (t.state === 'QUEUED' || t.state === 'CHECKPOINTED') pendingCores += t.resources.cores;
  const freeBatchCores = new Map<string, number>();
  for (const host of draft.all('hosts')) {
    const pool = draft.get('pools', host.poolId);
    if (!pool || !hostAcceptsBatch(draft, host, pool)) continue;
    const load = draft.loadOf(host.id);
    freeBatchCores.set(pool.id, (freeBatchCores.get(pool.id) ?? 0) + host.resources.cores - load.desktops.cores - load.batchActive.cores - load.batchYielding.cores);
  }
  let deficit = pendingCores - [...freeBatchCores.values()].reduce((a, b) => a + b, 0);

  const hosts = [...draft.all('hosts')].sort((a, b) => (a.id < b.id ? -1 : 1));
  for (const host of hosts) {
    const pool = draft.get('pools', host.poolId);
    if (!pool?.policy.powerManagement) continue;
    if (host.asleep) {
      if (deficit > 0 && poolAllowsBatchNow(draft, pool) && !host.draining && wakeHost(draft, host, 'power.wakeForBatch')) deficit -= host.resources.cores;
      continue;
    }
    if (!host.online || host.needsReconcile || host.presence === 'present') continue;
    if (draft.now - host.presenceSince < pool.policy.idleThresholdMs) continue;
    if (!hostIsEmpty(draft, host) || ownerExpectedSoon(draft, host, pool)) continue;
    const canTakeBatch = hostAcceptsBatch(draft, host, pool);
    if (canTakeBatch && pendingCores > 0) continue;
    draft.update('hosts', host.id, { asleep: true }, 'power.sleepIdle');
    draft.command({ type: 'sleepHost', hostId: host.id, generation: 0 }, 'power.sleepIdle');
  }
}
