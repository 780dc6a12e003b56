// The run's report: what was injected, what held, what broke, and how to replay it.
import type { ChaosOptions } from './options.js';
import type { ChaosResult } from './run.js';
import { describeFault } from './run.js';

export function formatReport(r: ChaosResult): string {
  const lines: string[] = [];
  const failed = r.faults.filter((f) => f.error);
  const byKind = new Map<string, number>();
  for (const f of r.faults) byKind.set(f.fault.kind, (byKind.get(f.fault.kind) ?? 0) + 1);
  lines.push('', `chaos report — seed ${r.seed}`);
  lines.push(`  faults injected: ${r.faults.length} (${[...byKind].map(([k, n]) => `${k} ${n}`).join(', ')})`);
  for (const f of failed) lines.push(`    could not inject ${describeFault(f.fault)}: ${f.error}`);
  lines.push(`  PCs ${r.stats.pcs}; desktops suspended ${r.stats.desktopsSuspended}; people who tapped ${r.stats.taps}`);
  lines.push(`  batch tasks: ${r.stats.tasksSubmitted} submitted, ${r.stats.tasksReportedDone} finished their work; states ${Object.entries(r.stats.taskStates).map(([s, n]) => `${s} ${n}`).join(', ')}`);
  lines.push(`  process starts: ${Object.entries(r.stats.processStarts).map(([p, n]) => `${p} ${n}`).join(', ')}; ${r.stats.runSeconds} s of real time`);
  if (r.violations.length === 0) {
    lines.push('  invariants: all held (one place per desktop and task, saved state kept until restored, no task lost, every tap served within the SLO, audit trail complete)');
  } else {
    lines.push(`  VIOLATIONS: ${r.violations.length}`);
    for (const v of r.violations.slice(0, 50)) lines.push(`    [${v.invariant}] ${v.message}`);
    if (r.violations.length > 50) lines.push(`    … and ${r.violations.length - 50} more`);
  }
  lines.push(`  replay: ${replayCommand(r.seed, r.options)}`);
  return lines.join('\n');
}

/** The command line that plays the same night with the same faults again. */
export function replayCommand(seed: number, o: ChaosOptions): string {
  const flags = [
    `--seed ${seed}`,
    `--faults ${o.faults}`,
    `--pcs ${o.pcs}`,
    `--fleets ${o.fleets}`,
    `--fault-spacing ${o.faultSpacingSeconds}`,
    `--task-seconds ${o.taskSeconds}`,
    `--tasks-per-pc ${o.tasksPerPc}`,
    `--slo ${o.sloSeconds}`,
    `--tap-share ${o.tapShare}`,
    ...(o.faultKinds ? [`--fault-kinds ${o.faultKinds.join(',')}`] : []),
    ...(o.testOnlyDisableFencing ? ['--test-only-disable-fencing'] : []),
  ];
  return `npm run chaos -- ${flags.join(' ')}`;
}
