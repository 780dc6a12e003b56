// The part of a pool one PC's presence or sign-in can touch. Reading that instead of the whole
// pool is what makes these events (the commonest by far, and the ones a person waits on) cheap:
// a tap reads one PC, its person, their desktops, the batch running there and the pool, not
// every PC, desktop, job and task of the pool. Pure: the loader in snapshot.ts reads exactly
// this subset from the database, and tests prove plans from it equal plans from the whole pool.
import type { Snapshot } from '../core/types.js';

/** The events planned from a focused snapshot: one PC, and the person at it. */
export interface FocusedEvent {
  hostId: string;
  /** Whose desktop the event is about: the sign-in's user, or for presence the PC's owner. */
  userId: string | null;
}

/** The person a presence (`userId` null: the PC's owner) or sign-in event is about. */
export function focusUserOf(snapshot: Pick<Snapshot, 'hosts'>, event: FocusedEvent): string | null {
  return event.userId ?? snapshot.hosts[event.hostId]?.ownerUserId ?? null;
}

/** Hosts a focused plan may name: the PC itself and wherever the person's desktops are or were saved. */
export function focusHostIds(snapshot: Pick<Snapshot, 'vms'>, hostId: string, userId: string | null): Set<string> {
  const ids = new Set([hostId]);
  if (userId === null) return ids;
  for (const vm of Object.values(snapshot.vms)) {
    if (vm.ownerUserId !== userId) continue;
    if (vm.hostId) ids.add(vm.hostId);
    if (vm.sourceHostId) ids.add(vm.sourceHostId);
    if (vm.savedState?.kind === 'local') ids.add(vm.savedState.hostId);
  }
  return ids;
}

/**
 * True when the focused subset is not enough: a desktop's saved state waits on a PC that is
 * asleep, offline or unreconciled, and waking it picks a peer among all the pool's PCs. Rare;
 * the whole pool is read then.
 */
export function focusNeedsWholePool(focused: Snapshot, userId: string | null): boolean {
  if (userId === null) return false;
  for (const vm of Object.values(focused.vms)) {
    if (vm.ownerUserId !== userId || vm.state !== 'SUSPENDED' || vm.savedState?.kind !== 'local') continue;
    const holder = focused.hosts[vm.savedState.hostId];
    if (holder && (!holder.online || holder.asleep || holder.needsReconcile)) return true;
  }
  return false;
}

/**
 * The focused subset of a pool-scoped snapshot (as loadSnapshot reads it): the pools; the PC,
 * the hosts its person's desktops name; that person; their desktops and every desktop held on
 * the PC; live batch tasks on the PC and their jobs; in-flight operations of those hosts. The
 * whole snapshot when focusNeedsWholePool says so.
 */
export function focusSnapshot(full: Snapshot, event: FocusedEvent): Snapshot {
  const userId = focusUserOf(full, event);
  const hostIds = focusHostIds(full, event.hostId, userId);
  const out: Snapshot = { pools: { ...full.pools }, hosts: {}, vms: {}, users: {}, jobs: {}, tasks: {}, operations: {} };
  for (const id of hostIds) {
    const h = full.hosts[id];
    if (h) out.hosts[id] = h;
  }
  if (userId !== null && full.users[userId]) out.users[userId] = full.users[userId];
  for (const vm of Object.values(full.vms)) {
    if ((userId !== null && vm.ownerUserId === userId) || vm.hostId === event.hostId || vm.sourceHostId === event.hostId) out.vms[vm.id] = vm;
  }
  for (const t of Object.values(full.tasks)) {
    if (t.hostId !== event.hostId) continue;
    out.tasks[t.id] = t;
    const job = full.jobs[t.jobId];
    if (job) out.jobs[job.id] = job;
  }
  for (const op of Object.values(full.operations)) if (hostIds.has(op.hostId)) out.operations[op.id] = op;
  return focusNeedsWholePool(out, userId) ? full : out;
}
