// Placement properties over random workloads: no over-commit, strict priority, earliest
// deadline first within a submitter, and dominant-resource fair share between submitters.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyPlan, checkInvariants, plan, type BatchTask, type Command, type Snapshot } from '../src/core/index.js';
import { MONDAY_2AM, res, World } from './core-fixtures.js';

const RUNS = Number(process.env.CORE_PROPERTY_RUNS ?? 1000);
const tick = { id: 'place', type: 'tick', timer: 'placement' } as const;

const hostArb = fc.record({ cores: fc.integer({ min: 1, max: 16 }), memGiB: fc.integer({ min: 1, max: 32 }), gpus: fc.constantFrom(0, 0, 0, 1) });
const taskArb = fc.record({
  cores: fc.integer({ min: 1, max: 6 }),
  memGiB: fc.integer({ min: 1, max: 8 }),
  gpus: fc.constantFrom(0, 0, 0, 1),
  priority: fc.nat(3),
  submitter: fc.nat(2),
  deadline: fc.option(fc.integer({ min: 1, max: 1000 }), { nil: null }),
});

type HostSpec = typeof hostArb extends fc.Arbitrary<infer T> ? T : never;
type TaskSpec = typeof taskArb extends fc.Arbitrary<infer T> ? T : never;

function workload(hosts: HostSpec[], tasks: TaskSpec[]): Snapshot {
  const w = new World().pool('p1', { batchWindow: 'always' });
  hosts.forEach((h, i) => w.host(`h${String(i).padStart(2, '0')}`, { resources: res(h.cores, h.memGiB * 1024, 100, h.gpus) }));
  tasks.forEach((t, i) => {
    const id = String(i).padStart(3, '0');
    w.job(`j${id}`, { priority: t.priority, submitterId: `s${t.submitter}`, deadline: t.deadline === null ? null : MONDAY_2AM + t.deadline * 60_000, submittedAt: i });
    w.task(`t${id}`, `j${id}`, { resources: res(t.cores, t.memGiB * 1024, 1, t.gpus) });
  });
  return w.s;
}

const dominates = (a: BatchTask, b: BatchTask) =>
  a.resources.cores >= b.resources.cores && a.resources.memoryMiB >= b.resources.memoryMiB && a.resources.diskGiB >= b.resources.diskGiB && a.resources.gpus >= b.resources.gpus;

describe('placement over random workloads', () => {
  it('never over-commits and never places a task twice', () => {
    fc.assert(
      fc.property(fc.array(hostArb, { minLength: 1, maxLength: 12 }), fc.array(taskArb, { maxLength: 60 }), (hosts, tasks) => {
        const s = workload(hosts, tasks);
        const p = plan(s, tick, undefined, MONDAY_2AM);
        const next = applyPlan(s, p);
        expect(checkInvariants(next)).toEqual([]);
        const ids = p.actions.filter((a): a is Extract<Command, { type: 'placeTask' }> => a.type === 'placeTask').map((c) => c.taskId);
        expect(new Set(ids).size).toBe(ids.length);
        // And a second round places none of them again.
        const again = plan(next, { ...tick, id: 'again' }, undefined, MONDAY_2AM);
        for (const a of again.actions) if (a.type === 'placeTask') expect(ids).not.toContain(a.taskId);
      }),
      { numRuns: RUNS },
    );
  }, 300_000);

  it('priority holds: no lower-priority task takes room an unplaced higher-priority one could have used; within a submitter, earliest deadline first', () => {
    fc.assert(
      fc.property(fc.array(hostArb, { minLength: 1, maxLength: 12 }), fc.array(taskArb, { maxLength: 60 }), (hosts, tasks) => {
        const s = workload(hosts, tasks);
        const next = applyPlan(s, plan(s, tick, undefined, MONDAY_2AM));
        const all = Object.values(next.tasks);
        const placed = all.filter((t) => t.state === 'RUNNING');
        const waiting = all.filter((t) => t.state === 'QUEUED');
        const job = (t: BatchTask) => next.jobs[t.jobId]!;
        for (const u of waiting) {
          for (const p of placed) {
            if (!dominates(p, u)) continue;
            // p needed at least what u needs, so u would have fitted where p went, and u was offered first.
            expect({ waiting: u.id, placed: p.id, lowerPriorityWon: job(p).priority < job(u).priority }).toEqual({ waiting: u.id, placed: p.id, lowerPriorityWon: false });
            if (job(p).priority === job(u).priority && job(p).submitterId === job(u).submitterId) {
              const dl = (t: BatchTask) => job(t).deadline ?? Number.POSITIVE_INFINITY;
              const uFirst = dl(u) < dl(p) || (dl(u) === dl(p) && job(u).submittedAt < job(p).submittedAt);
              expect({ waiting: u.id, placed: p.id, laterDeadlineWon: uFirst }).toEqual({ waiting: u.id, placed: p.id, laterDeadlineWon: false });
            }
          }
        }
      }),
      { numRuns: RUNS },
    );
  }, 300_000);

  it('fair share: submitters of equal priority with equal tasks get equal shares (within one task)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ cores: fc.integer({ min: 1, max: 16 }) }), { minLength: 1, maxLength: 10 }),
        fc.integer({ min: 2, max: 4 }),
        fc.integer({ min: 0, max: 20 }),
        (hosts, submitters, extra) => {
          const w = new World().pool('p1', { batchWindow: 'always' });
          hosts.forEach((h, i) => w.host(`h${i}`, { resources: res(h.cores, h.cores * 2048, 1000) }));
          const capacity = hosts.reduce((a, h) => a + h.cores, 0);
          const perSubmitter = capacity + extra; // everyone wants more than the whole fleet
          for (let s = 0; s < submitters; s++) {
            // Later submitters submitted earlier, so age alone would favour them.
            w.job(`j${s}`, { submitterId: `s${s}`, submittedAt: 1000 - s });
            for (let k = 0; k < perSubmitter; k++) w.task(`t${s}-${String(k).padStart(3, '0')}`, `j${s}`, { resources: res(1, 1024, 1) });
          }
          const next = applyPlan(w.s, plan(w.s, tick, undefined, MONDAY_2AM));
          const counts = Array.from({ length: submitters }, (_, s) => Object.values(next.tasks).filter((t) => t.state === 'RUNNING' && t.jobId === `j${s}`).length);
          expect(counts.reduce((a, b) => a + b, 0)).toBe(capacity);
          expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
        },
      ),
      { numRuns: Math.ceil(RUNS / 2) },
    );
  }, 300_000);
});
