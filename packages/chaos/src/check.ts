// The verdict, from what the hypervisors recorded, what the database says and the audit trail.
// Pure: the run collects the evidence, this judges it (and its tests feed it broken evidence).
import { doubleRuns, type RunInterval } from '@deskpool/simulator';

export type InvariantName = 'one-place' | 'saved-state' | 'batch' | 'tap-slo' | 'audit';

export interface Violation {
  invariant: InvariantName;
  message: string;
}

export interface DesktopEvidence {
  vmId: string;
  domain: string;
  homePc: number;
  /** Epoch ms of the person's tap, or null if they did not come in. */
  tapAt: number | null;
  dbState: string;
}

export interface TaskEvidence {
  id: string;
  state: string;
  /** Something that says why a failed task failed (exit status, output, an operation's error). */
  failureReason: string | null;
}

export interface OperationEvidence {
  kind: string;
  vmId: string | null;
  status: string;
  createdAt: number;
  finishedAt: number | null;
}

export interface AuditEvidence {
  entityId: string;
  at: number;
  afterState: string | null;
}

export interface Evidence {
  intervals: readonly RunInterval[];
  desktops: readonly DesktopEvidence[];
  tasks: readonly TaskEvidence[];
  tasksSubmitted: number;
  /** Tasks whose guest finished its work (the harness told the scheduler). */
  tasksReportedDone: ReadonlySet<string>;
  operations: readonly OperationEvidence[];
  audit: readonly AuditEvidence[];
  /** Desktop domains whose saved state file exists on some PC at the end. */
  savedStateFiles: ReadonlySet<string>;
  /** Desktop domains whose state the hypervisors hold (running, paused or managed-saved) at the end. */
  liveOrSavedDomains: ReadonlySet<string>;
  faultsEndAt: number;
  sloMs: number;
}

const TASK_ENDED = new Set(['succeeded', 'failed', 'cancelled', 'deadline_missed']);
const TASK_WAITING_OR_RUNNING = new Set(['queued', 'placed', 'running', 'checkpointing', 'checkpointed', 'stopping']);
const RESTORED_BY = new Set(['restore', 'start', 'migrate-in']);

const iso = (ms: number): string => new Date(ms).toISOString();

export function check(e: Evidence): Violation[] {
  const out: Violation[] = [];
  const pcOf = (pc: number): string => `PC ${pc}`;

  // 1. No desktop (nor batch task) ever ran in two places at once, over the whole timeline.
  for (const d of doubleRuns(e.intervals)) {
    const what = d.domain.startsWith('dp-task-') ? 'batch task' : 'desktop';
    out.push({ invariant: d.domain.startsWith('dp-task-') ? 'batch' : 'one-place', message: `${what} ${d.domain} ran on ${pcOf(d.pcs[0])} and ${pcOf(d.pcs[1])} at once (from ${iso(d.at)})` });
  }

  // 2. Saved state deleted only after a confirmed restore: the database's delete-state
  //    commands each follow a succeeded restore of that desktop; and no desktop is left with
  //    neither a running copy nor its saved state.
  for (const op of e.operations) {
    if (op.kind !== 'delete-state' || !op.vmId) continue;
    const restoredBefore = e.operations.some((r) => r.vmId === op.vmId && RESTORED_BY.has(r.kind) && r.status === 'succeeded' && r.finishedAt !== null && r.finishedAt <= op.createdAt);
    if (!restoredBefore) out.push({ invariant: 'saved-state', message: `delete-state for VM ${op.vmId} issued at ${iso(op.createdAt)} with no confirmed restore before it` });
  }
  for (const d of e.desktops) {
    const ran = e.intervals.some((i) => i.domain === d.domain);
    if (!ran) continue;
    if (!e.liveOrSavedDomains.has(d.domain) && !e.savedStateFiles.has(d.domain)) {
      out.push({ invariant: 'saved-state', message: `desktop ${d.domain} (database: ${d.dbState}) is neither running nor saved anywhere at the end: its state is gone` });
    }
  }

  // 3. Every batch task succeeded, failed with a reason, or is still queued/in progress.
  if (e.tasks.length !== e.tasksSubmitted) out.push({ invariant: 'batch', message: `${e.tasksSubmitted} tasks submitted but ${e.tasks.length} in the database` });
  for (const t of e.tasks) {
    if (!TASK_ENDED.has(t.state) && !TASK_WAITING_OR_RUNNING.has(t.state)) out.push({ invariant: 'batch', message: `task ${t.id} is in unknown state ${t.state}` });
    if (t.state === 'failed' && !t.failureReason) out.push({ invariant: 'batch', message: `task ${t.id} failed without a reason` });
    if (t.state === 'cancelled' || t.state === 'deadline_missed') out.push({ invariant: 'batch', message: `task ${t.id} ended ${t.state}, but nobody cancelled it and it had no deadline` });
    if (t.state === 'succeeded' && !e.tasksReportedDone.has(t.id)) out.push({ invariant: 'batch', message: `task ${t.id} is succeeded but its guest never finished its work` });
  }

  // 4. Every person who tapped got their desktop at that PC, within the SLO once faults stopped.
  for (const d of e.desktops) {
    if (d.tapAt === null) continue;
    const deadline = Math.max(d.tapAt, e.faultsEndAt) + e.sloMs;
    const served = e.intervals.some((i) => i.domain === d.domain && i.pc === d.homePc && i.from <= deadline && (i.until === null || i.until > deadline));
    if (!served) {
      const later = e.intervals.find((i) => i.domain === d.domain && i.pc === d.homePc && i.from > deadline);
      const where = later ? `it started there only at ${iso(later.from)}` : `it is not running there (database: ${d.dbState})`;
      out.push({ invariant: 'tap-slo', message: `${d.domain}: tap at ${iso(d.tapAt)} on ${pcOf(d.homePc)}, not running there by ${iso(deadline)}; ${where}` });
    }
  }

  // 5. Every desktop's last state change is in the audit trail.
  for (const d of e.desktops) {
    const last = e.audit.filter((a) => a.entityId === d.vmId && a.afterState !== null).sort((a, b) => a.at - b.at).at(-1);
    if (d.dbState !== 'STOPPED' && (!last || last.afterState !== d.dbState)) {
      out.push({ invariant: 'audit', message: `desktop ${d.domain} is ${d.dbState} but the audit trail's last state for it is ${last?.afterState ?? 'absent'}` });
    }
  }
  return out;
}
