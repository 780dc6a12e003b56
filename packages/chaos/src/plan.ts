// The run's script, pure and seeded: the same seed gives the same people, the same taps and
// the same faults at the same moments (relative to the start of the night).
import { prng } from '@deskpool/simulator';
import type { ChaosOptions } from './options.js';

const S = 1000;

export type FaultKind =
  | 'kill-api'
  | 'kill-worker'
  | 'redis-restart-persistent'
  | 'redis-restart-empty'
  | 'postgres-restart'
  | 'kill-fleet'
  | 'cut-connections'
  | 'partition-host'
  | 'clock-skew'
  | 'slow-disk';

export interface Fault {
  /** ms after the start of the night. */
  at: number;
  kind: FaultKind;
  /** API, worker or fleet index; PC for host faults; -1 for all connections. */
  target: number;
  /** How long the fault lasts (down time, partition, skew, slow disk). */
  durationMs: number;
  /** Clock skew (ms) or disk delay per operation (ms). */
  amount: number;
}

export interface PlannedPerson {
  pc: number;
  name: string;
  /** ms after the start: when they stop touching the keyboard in the evening. */
  leavesAt: number;
  /** ms after the start of their morning tap, or null (not coming in). */
  tapsAt: number | null;
}

export interface ChaosPlan {
  people: PlannedPerson[];
  faults: Fault[];
  faultsStartAt: number;
  faultsEndAt: number;
  /** When the run stops and the checks begin (ms after the start). */
  endAt: number;
  sloMs: number;
}

const WEIGHTS: [FaultKind, number][] = [
  ['kill-api', 12],
  ['kill-worker', 12],
  ['redis-restart-persistent', 6],
  ['redis-restart-empty', 3],
  ['postgres-restart', 6],
  ['kill-fleet', 10],
  ['cut-connections', 12],
  ['partition-host', 8],
  ['clock-skew', 8],
  ['slow-disk', 8],
];

export const FAULT_KINDS: readonly FaultKind[] = WEIGHTS.map(([k]) => k);

/** Activity every few seconds while a person is at the PC. */
export const ACTIVITY_EVERY_MS = 5 * S;
/** The pool's idle rule (the smallest the API accepts). */
export const IDLE_THRESHOLD_MS = 60 * S;
/** The scheduler declares a host lost after this much silence (15 s heartbeats). */
export const HEARTBEAT_TIMEOUT_MS = 45 * S;

export function buildPlan(options: Pick<ChaosOptions, 'seed' | 'faults' | 'pcs' | 'fleets' | 'faultSpacingSeconds' | 'sloSeconds' | 'tapShare'> & { faultKinds?: readonly FaultKind[] | undefined }): ChaosPlan {
  const rand = prng(options.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  const between = (lo: number, hi: number): number => lo + rand() * (hi - lo);
  const spacing = options.faultSpacingSeconds * S;
  // Faults begin while desktops are still running and go on through the suspend and the night.
  const faultsStartAt = 15 * S;
  const faults: Fault[] = [];
  const weights = options.faultKinds ? WEIGHTS.filter(([k]) => options.faultKinds?.includes(k)) : WEIGHTS;
  const total = weights.reduce((n, [, w]) => n + w, 0);
  for (let i = 0; i < options.faults; i += 1) {
    let r = rand() * total;
    let kind: FaultKind = weights[0]?.[0] ?? 'kill-api';
    for (const [k, w] of weights) {
      if ((r -= w) < 0) {
        kind = k;
        break;
      }
    }
    const at = faultsStartAt + i * spacing + Math.floor(rand() * spacing * 0.5);
    const pc = Math.floor(rand() * options.pcs);
    switch (kind) {
      case 'kill-api':
      case 'kill-worker':
        faults.push({ at, kind, target: Math.floor(rand() * 2), durationMs: Math.round(between(500, 3000)), amount: 0 });
        break;
      case 'kill-fleet':
        faults.push({ at, kind, target: Math.floor(rand() * options.fleets), durationMs: Math.round(between(500, 3000)), amount: 0 });
        break;
      case 'redis-restart-persistent':
      case 'redis-restart-empty':
      case 'postgres-restart':
        faults.push({ at, kind, target: 0, durationMs: Math.round(between(500, 3000)), amount: 0 });
        break;
      case 'cut-connections':
        faults.push({ at, kind, target: rand() < 0.3 ? -1 : pc, durationMs: 0, amount: 0 });
        break;
      case 'partition-host':
        // Longer than the heartbeat timeout: the host is declared lost and must be reconciled.
        faults.push({ at, kind, target: pc, durationMs: Math.round(between(HEARTBEAT_TIMEOUT_MS + 10 * S, HEARTBEAT_TIMEOUT_MS + 60 * S)), amount: 0 });
        break;
      case 'clock-skew':
        faults.push({ at, kind, target: pc, durationMs: Math.round(between(20 * S, 60 * S)), amount: Math.round(pick([-1, 1]) * between(30 * S, 15 * 60 * S)) });
        break;
      case 'slow-disk':
        faults.push({ at, kind, target: pc, durationMs: Math.round(between(20 * S, 60 * S)), amount: Math.round(between(1 * S, 6 * S)) });
        break;
    }
  }
  // Nothing outlasts the fault window by more than a partition's worth: a short run stays short.
  const windowEnd = faultsStartAt + options.faults * spacing + HEARTBEAT_TIMEOUT_MS + 15 * S;
  for (const f of faults) f.durationMs = Math.max(0, Math.min(f.durationMs, windowEnd - f.at));
  const lastFault = faults.reduce((m, f) => Math.max(m, f.at + f.durationMs), faultsStartAt);
  const faultsEndAt = lastFault;
  // Mornings: taps spread over the last stretch of the faults and a little after.
  // People leave within 25 s; the pool suspends a desktop a threshold after the last input:
  // taps come after the desktops had their chance to be suspended.
  const tapFrom = Math.max(25 * S + IDLE_THRESHOLD_MS + 30 * S, faultsEndAt - 60 * S);
  const tapUntil = Math.max(tapFrom, faultsEndAt) + 20 * S;
  const people: PlannedPerson[] = [];
  for (let pc = 0; pc < options.pcs; pc += 1) {
    const taps = rand() < options.tapShare;
    people.push({ pc, name: `p${String(pc).padStart(4, '0')}`, leavesAt: Math.round(between(15 * S, 25 * S)), tapsAt: taps ? Math.round(between(tapFrom, tapUntil)) : null });
  }
  const sloMs = options.sloSeconds * S;
  return { people, faults, faultsStartAt, faultsEndAt, endAt: tapUntil + sloMs + 5 * S, sloMs };
}

/**
 * A person's keyboard activity: in the evening as ms after their PC's agent first starts, in
 * the morning as epoch ms (given the epoch of the start of the night).
 */
export function activityOf(person: PlannedPerson, startMs: number, endMs: number): { evening: number[]; morning: number[] } {
  const evening: number[] = [];
  const morning: number[] = [];
  for (let t = 0; t <= person.leavesAt; t += ACTIVITY_EVERY_MS) evening.push(t);
  if (person.tapsAt !== null) for (let t = person.tapsAt; startMs + t <= endMs; t += ACTIVITY_EVERY_MS) morning.push(startMs + t);
  return { evening, morning };
}
