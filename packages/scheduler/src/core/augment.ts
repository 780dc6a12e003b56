import { yieldTask } from './batch-yield.js';
import { desktopRoom } from './capacity.js';
import { undoAugment } from './desktop.js';
import type { PlanDraft } from './draft.js';

/**
 * A present person's desktop is starved: hot-add cores/memory within the pool's limits,
 * from free room first and then by making batch on that PC yield. Given back when the
 * pressure ends, the person leaves, or the desktop is suspended.
 */
export function onResourcePressure(draft: PlanDraft, vmId: string, starved: boolean): void {
  const vm = draft.get('vms', vmId);
  if (!vm) return draft.reason('unknownVm', `No desktop ${vmId}`);
  if (!starved) {
    if (vm.augmented && vm.state === 'RUNNING') undoAugment(draft, vm, 'augment.pressureGone');
    return;
  }
  const rule = 'augment.starved';
  const host = vm.hostId ? draft.get('hosts', vm.hostId) : undefined;
  const pool = draft.get('pools', vm.poolId);
  if (vm.state !== 'RUNNING' || !host || !pool || vm.augmented) return;
  if (!pool.policy.augment.enabled) return draft.reason('augmentDisabled', `Pool ${pool.id} does not allow hot-add`, { kind: 'vms', id: vm.id });
  if (host.presence !== 'present') return draft.reason('ownerAbsent', `Nobody is at ${host.id}; desktop ${vm.id} is not augmented`, { kind: 'vms', id: vm.id });
  const want = { cores: pool.policy.augment.maxExtraCores, memoryMiB: pool.policy.augment.maxExtraMemoryMiB };
  const running = draft
    .tasksOnHost(host.id)
    .filter((t) => t.state === 'RUNNING')
    .sort((a, b) => (draft.get('jobs', a.jobId)?.priority ?? 0) - (draft.get('jobs', b.jobId)?.priority ?? 0) || (a.id < b.id ? -1 : 1));
  let room = desktopRoom(draft, host);
  const after: string[] = [];
  for (const task of running) {
    if (room.cores >= want.cores && room.memoryMiB >= want.memoryMiB) break;
    after.push(yieldTask(draft, task, rule).key);
    room = desktopRoom(draft, host);
  }
  const grant = { cores: Math.max(0, Math.min(want.cores, room.cores)), memoryMiB: Math.max(0, Math.min(want.memoryMiB, room.memoryMiB)) };
  if (grant.cores === 0 && grant.memoryMiB === 0) return draft.reason('noRoomToAugment', `Host ${host.id} has no room to hot-add to ${vm.id}`, { kind: 'vms', id: vm.id });
  draft.update('vms', vm.id, { augmented: grant }, rule);
  draft.command({ type: 'hotplug', vmId: vm.id, hostId: host.id, generation: vm.generation, addCores: grant.cores, addMemoryMiB: grant.memoryMiB, undo: false, after }, rule);
}
