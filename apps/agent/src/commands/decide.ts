import type { CommandFrame, DomainStateReport, OpOutcome } from '@deskpool/protocol';
import type { JournalBegin, JournalEnd, JournalRecord } from './journal.js';

export type CommandDecision =
  | { action: 'replay'; end: JournalEnd }
  | { action: 'already-running' }
  | { action: 'refuse'; code: 'STALE_GENERATION' | 'IDEMPOTENCY_CONFLICT'; message: string }
  | { action: 'execute' };

/**
 * What to do with an incoming command, from the journal alone. A repeat of a finished command
 * is answered from the journal; a command carrying an older fencing generation than one already
 * accepted for the VM is refused, because a newer owner has taken over (invariant 1).
 */
export function decideCommand(command: CommandFrame, record: JournalRecord | undefined, highestGeneration: number | undefined): CommandDecision {
  if (record?.begin && (record.begin.kind !== command.kind || record.begin.vmId !== command.target?.vmId)) {
    return {
      action: 'refuse',
      code: 'IDEMPOTENCY_CONFLICT',
      message: `idempotency key ${command.idempotencyKey} was already used for ${record.begin.kind} of ${record.begin.vmId ?? 'the host'}; use a new key for a new command`,
    };
  }
  if (record?.end) return { action: 'replay', end: record.end };
  if (record?.begin) return { action: 'already-running' };
  const target = command.target;
  if (target && highestGeneration !== undefined && target.generation < highestGeneration) {
    return {
      action: 'refuse',
      code: 'STALE_GENERATION',
      message: `command for VM ${target.vmId} carries fencing generation ${target.generation}, but this host already accepted generation ${highestGeneration}; re-read the VM and issue the command with its current generation`,
    };
  }
  return { action: 'execute' };
}

export interface Reconciliation {
  outcome: Exclude<OpOutcome, 'refused'>;
  message: string;
}

/**
 * After a restart, an unfinished command is judged by where the hypervisor actually is: did the
 * domain reach the state the command was driving it to?
 */
export function reconcileInterrupted(begin: JournalBegin, observed: DomainStateReport['state'], stateFileExists: boolean): Reconciliation {
  const reached = (ok: boolean, goal: string): Reconciliation =>
    ok
      ? { outcome: 'succeeded', message: `interrupted by an agent restart; the domain is ${observed}, so the ${begin.kind} completed` }
      : { outcome: 'failed', message: `interrupted by an agent restart before the domain was ${goal} (it is ${observed}); retry the command with a new idempotency key` };
  switch (begin.kind) {
    case 'start':
    case 'restore':
    case 'run-batch':
    case 'migrate-in':
      return reached(observed === 'running', 'running');
    case 'suspend':
      return reached(observed === 'saved', 'saved');
    case 'checkpoint-batch':
      return typeof begin.params.path === 'string' ? reached(observed !== 'running' && stateFileExists, 'saved to its file') : reached(observed === 'saved', 'saved');
    case 'save-state':
      return reached(observed !== 'running' && stateFileExists, 'saved to its file');
    case 'migrate-out':
      return reached(observed === 'missing' || observed === 'shutoff', 'gone from this host');
    case 'stop-batch':
      return reached(observed !== 'running' && observed !== 'paused', 'stopped');
    case 'delete-state':
      return reached(!stateFileExists, 'without its saved-state file');
    case 'hotplug':
    case 'move-state':
    case 'sleep-host':
    case 'wake-host':
    case 'reconcile': // its found-running lists died with the agent; a new reconcile is safe to repeat
      return { outcome: 'failed', message: `interrupted by an agent restart; the outcome of ${begin.kind} cannot be read back, so retry it with a new idempotency key` };
  }
}
