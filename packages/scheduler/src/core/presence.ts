import { enforceOwnerShare } from './batch-yield.js';
import { bringDesktopTo, desktopOfUser, recordArrival, undoAugment } from './desktop.js';
import type { PlanDraft } from './draft.js';
import type { Host } from './types.js';

function markPresent(draft: PlanDraft, host: Host, rule: string): Host {
  if (host.presence === 'present' && !host.asleep) return host;
  // Input on a PC means it is awake, whatever we believed.
  return draft.update('hosts', host.id, { presence: 'present', presenceSince: draft.now, asleep: false }, rule);
}

/** Someone works at a PC: it is the owner's desktop they want there. Presence always wins. */
export function onPresent(draft: PlanDraft, hostId: string): void {
  const rule = 'desktop.presenceWins';
  const found = draft.get('hosts', hostId);
  if (!found) return draft.reason('unknownHost', `No host ${hostId}`);
  const host = markPresent(draft, found, rule);
  if (!host.ownerUserId) {
    // Someone without a desktop here yet (hot-desking before sign-in): batch still shrinks to the share.
    enforceOwnerShare(draft, host, 'batch.ownerShare');
    return;
  }
  const user = draft.get('users', host.ownerUserId);
  const vm = desktopOfUser(draft, host.ownerUserId);
  if (user) recordArrival(draft, user, vm?.state === 'RUNNING' && vm.hostId === host.id, 'prestage.arrivalObserved');
  if (vm) bringDesktopTo(draft, vm, host, { personPresent: true }, rule);
  enforceOwnerShare(draft, host, 'batch.ownerShare');
}

/** The PC reports no input: remember since when (the idle rule acts on ticks); give back augments. */
export function onIdle(draft: PlanDraft, hostId: string): void {
  const host = draft.get('hosts', hostId);
  if (!host) return draft.reason('unknownHost', `No host ${hostId}`);
  if (host.presence !== 'idle') draft.update('hosts', host.id, { presence: 'idle', presenceSince: draft.now }, 'desktop.presence');
  for (const vm of draft.vmsOnHost(host.id)) {
    if (vm.state === 'RUNNING' && vm.hostId === host.id && vm.augmented) undoAugment(draft, vm, 'augment.ownerLeft');
  }
}

/** Hot-desking: user signs in at a PC that may not be theirs; the desktop moves there. */
export function onSignIn(draft: PlanDraft, userId: string, hostId: string): void {
  const rule = 'desktop.hotDesk';
  const found = draft.get('hosts', hostId);
  const user = draft.get('users', userId);
  if (!found || !user) return draft.reason('unknownSubject', `No host ${hostId} or user ${userId}`);
  const host = markPresent(draft, found, rule);
  const vm = desktopOfUser(draft, userId);
  recordArrival(draft, user, vm?.state === 'RUNNING' && vm.hostId === host.id, 'prestage.arrivalObserved');
  if (!vm) return draft.reason('noDesktop', `User ${userId} has no desktop VM`);
  bringDesktopTo(draft, vm, host, { personPresent: true }, rule);
  enforceOwnerShare(draft, host, 'batch.ownerShare');
}
