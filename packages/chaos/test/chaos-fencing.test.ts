// Can the chaos checker fail? One fault, chosen to need fencing: a PC running a batch task is
// partitioned past the heartbeat timeout (the control plane declares it lost) and then healed.
// With fencing (the real build) the task stays held on that PC and nothing runs twice. With
// the test-only broken build (workers requeue a lost PC's tasks at once, agents accept stale
// generations and their reconcile destroys nothing) the task is started on another PC while
// the cut-off one still runs it, and the checker must name that. Needs what chaos.test.ts needs.
import { describe, expect, it } from 'vitest';
import { chaosOptionsSchema, type ChaosOptionsInput } from '../src/options.js';
import { formatReport } from '../src/report.js';
import { runChaos } from '../src/run.js';

// Tasks long enough to outlast the partition; nobody taps (the night is all that matters here).
const PARTITION_ONLY: ChaosOptionsInput = { pcs: 3, fleets: 1, faults: 1, faultKinds: ['partition-host'], taskSeconds: 900, tasksPerPc: 1, tapShare: 0, sloSeconds: 15, seed: 5 };
const lines: string[] = [];
const io = { print: (line: string) => void lines.push(line) };

describe('chaos run with a partition of a PC running batch work', () => {
  it('the broken build (fencing disabled) is caught: a task ran on two PCs at once', { timeout: 600_000 }, async () => {
    const result = await runChaos(chaosOptionsSchema.parse({ ...PARTITION_ONLY, testOnlyDisableFencing: true }), io);
    const report = formatReport(result);
    process.stdout.write(`${lines.join('\n')}${report}\n`);
    expect(result.faults.map((f) => f.fault.kind), report).toEqual(['partition-host']);
    // Invariant 3 (no batch task run twice at once), seen in the hypervisors' own record.
    const doubleRuns = result.violations.filter((v) => v.invariant === 'batch' && /batch task dp-task-\S+ ran on PC \d+ and PC \d+ at once/.test(v.message));
    expect(doubleRuns.length, report).toBeGreaterThan(0);
    expect(report).toContain('--test-only-disable-fencing');
  });

  it('the real build holds every invariant under the same fault', { timeout: 600_000 }, async () => {
    lines.length = 0;
    const result = await runChaos(chaosOptionsSchema.parse(PARTITION_ONLY), io);
    const report = formatReport(result);
    process.stdout.write(`${lines.join('\n')}${report}\n`);
    expect(result.faults.filter((f) => f.error), report).toEqual([]);
    expect(result.violations, report).toEqual([]);
    // The task on the cut-off PC was held, not lost: every task is still accounted for.
    expect(Object.values(result.stats.taskStates).reduce((a, b) => a + b, 0), report).toBe(PARTITION_ONLY.pcs);
  });
});
