import { onResourcePressure } from './augment.js';
import { PlanDraft } from './draft.js';
import { onHeartbeatLost, onHostBack, onHostFenced } from './hosts.js';
import { onJobCancelled, onJobSubmitted, onTaskFinished } from './jobs.js';
import { placeBatch } from './placement/place.js';
import { onPowerTick } from './power.js';
import { onIdle, onPresent, onSignIn } from './presence.js';
import { onOperationResult } from './results.js';
import { DEFAULT_SETTINGS, type PlannerSettings } from './settings.js';
import { onIdleCheck, onMorningDrain, onPreStageTick } from './timers.js';
import type { Millis, Plan, SchedulerEvent, Snapshot } from './types.js';

/**
 * The planning core: what to do about one event, given everything we know and the time.
 * Pure and deterministic: the same input gives the same actions, keys included, so a
 * replayed event after a crash is deduplicated downstream by idempotency key.
 */
export function plan(snapshot: Snapshot, event: SchedulerEvent, settings: PlannerSettings = DEFAULT_SETTINGS, now: Millis): Plan {
  const draft = new PlanDraft(snapshot, event, now);
  switch (event.type) {
    case 'presence':
      if (event.presence === 'present') onPresent(draft, event.hostId);
      else onIdle(draft, event.hostId);
      break;
    case 'signIn':
      onSignIn(draft, event.userId, event.hostId);
      break;
    case 'heartbeatLost': {
      const host = draft.get('hosts', event.hostId);
      // A PC we put to sleep is expected to go quiet.
      if (host?.asleep) draft.reason('asleep', `Host ${event.hostId} is asleep; silence expected`);
      else onHeartbeatLost(draft, event.hostId, settings.testOnlyTreatLostHostsAsFenced === true);
      break;
    }
    case 'hostBack':
      onHostBack(draft, event.hostId);
      break;
    case 'hostFenced':
      onHostFenced(draft, event.hostId);
      break;
    case 'operationResult':
      onOperationResult(draft, event);
      break;
    case 'taskFinished':
      onTaskFinished(draft, event.taskId, event.generation, event.outcome);
      break;
    case 'pin': {
      const vm = draft.get('vms', event.vmId);
      if (!vm) draft.reason('unknownVm', `No desktop ${event.vmId}`);
      else if (vm.pinned !== event.pinned) draft.update('vms', vm.id, { pinned: event.pinned }, event.pinned ? 'desktop.pin' : 'desktop.unpin');
      break;
    }
    case 'resourcePressure':
      onResourcePressure(draft, event.vmId, event.starved);
      break;
    case 'jobSubmitted':
      onJobSubmitted(draft, event.job, event.tasks);
      placeBatch(draft, settings);
      break;
    case 'jobCancelled':
      onJobCancelled(draft, event.jobId);
      break;
    case 'tick':
      switch (event.timer) {
        case 'idleCheck':
        case 'nightStart':
          onIdleCheck(draft);
          break;
        case 'preStage':
          onPreStageTick(draft);
          break;
        case 'power':
          onPowerTick(draft);
          break;
        case 'morningDrain':
          onMorningDrain(draft);
          break;
        case 'placement':
          placeBatch(draft, settings);
          break;
      }
      break;
  }
  return draft.finish();
}
