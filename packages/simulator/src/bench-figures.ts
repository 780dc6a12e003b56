// The week1000 benchmark figures from a fleet report, with the validity check that keeps a run
// the control plane could not follow from passing off as a result.
import type { FleetReport } from './fleet-report.js';

export interface BenchFigure {
  value: number | null;
  unit: string;
  method?: string;
  why?: string;
}

export interface BenchContext {
  /** What was run, for every figure's method. */
  what: string;
  /** Machine load when the run ended (1-minute average). */
  load: number;
}

/** Simulated minutes of queueing at p99 above which the office's figures say more about the machine than the policy. */
export const MAX_LAG_MINUTES = 10;
/** Share of arrivals whose desktop must have been suspended overnight for the night to count as simulated. */
export const MIN_SUSPENDED_SHARE = 0.5;

/** Whether the stack kept up with the simulated clock, and if not, why (with the measured values). */
export function followed(r: FleetReport): { ok: true } | { ok: false; why: string } {
  const lagMinutes = r.controlPlane.queueMsP99 === null ? null : (r.controlPlane.queueMsP99 * r.run.speed) / 60_000;
  const suspendedShare = r.mornings.count > 0 ? r.mornings.afterSuspend / r.mornings.count : 0;
  const problems: string[] = [];
  if (r.controlPlane.events === 0) problems.push('the scheduler handled no events');
  if (lagMinutes === null || lagMinutes > MAX_LAG_MINUTES) problems.push(`events waited up to ${lagMinutes === null ? 'n/a' : lagMinutes.toFixed(0)} simulated minutes in the queue at p99 (limit ${MAX_LAG_MINUTES})`);
  if (suspendedShare < MIN_SUSPENDED_SHARE) problems.push(`only ${r.mornings.afterSuspend} of ${r.mornings.count} arrivals found their desktop suspended overnight (limit ${MIN_SUSPENDED_SHARE * 100}%)`);
  if (problems.length === 0) return { ok: true };
  const rate = r.run.realSeconds > 0 ? (r.controlPlane.events / r.run.realSeconds).toFixed(2) : 'n/a';
  return {
    ok: false,
    why:
      `the control plane could not follow ${r.pcs} PCs at ${r.run.speed}x on this machine: ${problems.join('; ')}. ` +
      `It handled ${r.controlPlane.events} events in ${r.run.realSeconds} s (${rate}/s), handling p99 ${r.controlPlane.handleMsP99} ms. ` +
      `Measured anyway (not results): harvest ${r.harvest.ratio}, instant mornings ${r.mornings.instantRatio} (${r.mornings.instantAfterSuspendRatio} after a suspended night), wait p99 ${r.mornings.waitS.p99} s, energy saved ${r.energy.savedRatio}`,
  };
}

export function week1000Figures(r: FleetReport, ctx: BenchContext): Record<string, BenchFigure> {
  const what = `${ctx.what}; machine load ${ctx.load.toFixed(1)} at the end`;
  const gate = followed(r);
  const gated = (value: number | null, unit: string, method: string, noneWhy: string): BenchFigure => {
    if (!gate.ok) return { value: null, unit, why: gate.why };
    return value === null ? { value: null, unit, why: noneWhy } : { value, unit, method: `${what}: ${method}` };
  };
  const e = r.energy;
  const rate = r.run.realSeconds > 0 ? Math.round((100 * r.controlPlane.events) / r.run.realSeconds) / 100 : null;
  return {
    'week1000.harvest_ratio': gated(r.harvest.ratio, '0..1', `idle night PC-hours (19:00–07:00, owner away) used by batch / available with demand present (at most the PCs the running plus queued work could fill), sampled every 5 simulated minutes: ${r.harvest.usedPcHours} of ${r.harvest.availablePcHours}`, 'no night PC-hours with batch demand in the window'),
    'week1000.energy_saved_ratio': gated(
      e.savedRatio,
      '0..1',
      `1 − office energy / always-on energy over the window; per-state power asleep ${e.powerWatts.asleep} W, on ${e.powerWatts.pcIdle} W, + ${e.powerWatts.desktop} W per running desktop, + ${e.powerWatts.batchCore} W per busy batch core; a PC running only batch is charged to batch (${e.batchKWh} kWh); always-on = every PC on with its desktop running; counting batch too: ${e.savedRatioInclBatch}`,
      'no energy recorded',
    ),
    'week1000.instant_morning_ratio': gated(r.mornings.instantAfterSuspendRatio, '0..1', `arrivals whose desktop, suspended overnight, was already running again at their first tap: ${r.mornings.instantAfterSuspend} of ${r.mornings.afterSuspend} (all arrivals: ${r.mornings.instant} of ${r.mornings.count})`, 'no arrival found a desktop suspended overnight'),
    'week1000.morning_wait_s.p99': gated(r.mornings.waitS.p99, 's', `simulated seconds from first tap to desktop running there, p99 over ${r.mornings.count} arrivals (p50 ${r.mornings.waitS.p50}, max ${r.mornings.waitS.max}); at ${r.run.speed}x each real millisecond of queueing is ${(r.run.speed / 1000).toFixed(2)} simulated s`, 'no arrival got their desktop in the window'),
    'week1000.prestage_precision': gated(r.preStaging.precision, '0..1', `pre-stagings (desktop restored at its own PC before the person came in) the person used: ${r.preStaging.hits} of ${r.preStaging.stagings}`, 'no pre-staging happened'),
    'week1000.events_per_s': rate === null ? { value: null, unit: '1/s', why: 'no run time' } : { value: rate, unit: '1/s', method: `${what}: scheduler events handled per real second over the run (${r.controlPlane.events} in ${r.run.realSeconds} s)` },
    'week1000.event_handle_ms.p99':
      r.controlPlane.handleMsP99 === null ? { value: null, unit: 'ms', why: 'no events handled' } : { value: r.controlPlane.handleMsP99, unit: 'ms', method: `${what}: real ms a scheduler worker spent per event (lock, snapshot, plan, commit, dispatch), p99 of ${r.controlPlane.events}; queue wait p99 ${r.controlPlane.queueMsP99} ms` },
  };
}
