// The placement round's data structures against plain models: the capacity index (buckets of
// free cores in typed arrays), task classes (ShapeTable), the fair queue's order, and the
// round ending early once every queued class has failed.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyPlan, plan, type BatchJob, type BatchTask, type Resources } from '../src/core/index.js';
import { CapacityIndex } from '../src/core/placement/capacity-index.js';
import { FairQueue } from '../src/core/placement/fair-queue.js';
import { mulberry32 } from '../src/core/placement/rng.js';
import { ShapeTable } from '../src/core/placement/shapes.js';
import { MONDAY_2AM, res, World } from './core-fixtures.js';

const RUNS = Number(process.env.CORE_PROPERTY_RUNS ?? 300);

const job = (id: string, extra: Partial<BatchJob> = {}): BatchJob => ({
  id,
  poolId: null,
  submitterId: 's',
  priority: 0,
  deadline: null,
  checkpointable: true,
  maxRetries: 0,
  submittedAt: 0,
  constraints: { labels: {} },
  cancelled: false,
  ...extra,
});
const task = (id: string, jobId: string, resources: Resources = res(1, 1024)): BatchTask => ({
  id,
  jobId,
  resources,
  state: 'QUEUED',
  hostId: null,
  generation: 0,
  attempts: 0,
  restarts: 0,
  checkpoint: null,
  afterStop: null,
});

describe('CapacityIndex', () => {
  it('keeps free room per host, rebuckets on take, and leaves out hosts without cores or memory', () => {
    const index = new CapacityIndex(3);
    index.set(0, res(8, 8192, 100));
    index.set(1, res(2, 1024, 100));
    index.set(2, res(4, 0, 100));
    expect(index.hostCount).toBe(2);
    expect(index.has(2)).toBe(false);
    expect(index.fits(2, res(1, 0))).toBe(false);
    expect(index.fits(1, res(2, 1024, 100))).toBe(true);
    expect(index.fits(1, res(2, 1025))).toBe(false);
    index.take(1, res(2, 512));
    expect(index.has(1)).toBe(false);
    expect(index.hostCount).toBe(1);
    index.take(0, res(3, 4096, 10));
    expect(index.freeOf(0)).toEqual(res(5, 4096, 90));
    expect(index.freeCores(0)).toBe(5);
    expect(index.freeMemoryMiB(0)).toBe(4096);
  });

  it('scans every host with enough cores, tightest bucket first, and stops at the probe limit', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ cores: fc.integer({ min: 0, max: 12 }), mem: fc.integer({ min: 0, max: 4 }) }), { minLength: 1, maxLength: 40 }),
        fc.array(fc.record({ host: fc.nat(39), cores: fc.integer({ min: 0, max: 6 }) }), { maxLength: 30 }),
        fc.integer({ min: 0, max: 12 }),
        fc.integer({ min: 1, max: 50 }),
        (hosts, takes, minCores, probeLimit) => {
          const index = new CapacityIndex(hosts.length);
          const model = hosts.map((h) => ({ cores: h.cores, mem: h.mem * 1024 }));
          hosts.forEach((h, i) => index.set(i, res(h.cores, h.mem * 1024, 10)));
          for (const t of takes) {
            const h = t.host % hosts.length;
            const need = res(t.cores, 0);
            if (!index.fits(h, need)) continue;
            index.take(h, need);
            (model[h] as { cores: number }).cores -= t.cores;
          }
          const inIndex = model.map((m) => m.cores > 0 && m.mem > 0);
          expect(index.hostCount).toBe(inIndex.filter(Boolean).length);
          const seen: number[] = [];
          const probes = index.scan(minCores, mulberry32(7), Number.POSITIVE_INFINITY, (h) => (seen.push(h), true));
          const expected = model.flatMap((m, i) => (inIndex[i] && Math.floor(m.cores) >= minCores ? [i] : []));
          expect(probes).toBe(expected.length);
          expect([...seen].sort((a, b) => a - b)).toEqual(expected);
          // Tightest first: the whole-core buckets visited never go down.
          for (let k = 1; k < seen.length; k++) expect(Math.floor(model[seen[k] as number]!.cores)).toBeGreaterThanOrEqual(Math.floor(model[seen[k - 1] as number]!.cores));
          const limited = index.scan(minCores, mulberry32(7), probeLimit, () => true);
          expect(limited).toBe(Math.min(probeLimit, expected.length));
        },
      ),
      { numRuns: RUNS },
    );
  });
});

describe('ShapeTable', () => {
  it('gives one id per constraints and resources, whatever the label order or job', () => {
    const shapes = new ShapeTable();
    const a = job('a', { constraints: { labels: { arch: 'x86', floor: '1' } } });
    const b = job('b', { constraints: { labels: { floor: '1', arch: 'x86' } } });
    const c = job('c', { constraints: { labels: { arch: 'arm' } } });
    const d = job('d', { poolId: 'p2' });
    const id = shapes.idOf(a, res(2, 2048, 1));
    expect(shapes.idOf(b, res(2, 2048, 1))).toBe(id);
    expect(shapes.idOf(a, res(2, 2048, 1, 1))).not.toBe(id);
    expect(shapes.idOf(a, res(2, 4096, 1))).not.toBe(id);
    expect(shapes.idOf(c, res(2, 2048, 1))).not.toBe(id);
    expect(shapes.idOf(d, res(2, 2048, 1))).not.toBe(id);
    expect(shapes.size).toBe(5);
  });
});

describe('FairQueue', () => {
  it('offers a submitter its tasks by deadline, then submission time, then task id', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ deadline: fc.option(fc.integer({ min: 1, max: 4 }), { nil: null }), submittedAt: fc.integer({ min: 0, max: 3 }), tasks: fc.integer({ min: 1, max: 5 }) }), { minLength: 1, maxLength: 8 }),
        (jobSpecs) => {
          const tasks: BatchTask[] = [];
          const jobs: BatchJob[] = [];
          jobSpecs.forEach((spec, j) => {
            const jb = job(`j${j}`, { deadline: spec.deadline, submittedAt: spec.submittedAt });
            for (let k = 0; k < spec.tasks; k++) {
              // Ids that interleave jobs, so ties in deadline and age are settled across jobs.
              tasks.push(task(`t${String(k).padStart(2, '0')}-${j}`, jb.id));
              jobs.push(jb);
            }
          });
          const order: string[] = [];
          new FairQueue(tasks, jobs, [], { cores: 100, memoryMiB: 100_000 }).drain((i) => (order.push(tasks[i]!.id), false), () => true);
          const key = (i: number) => [jobs[i]!.deadline ?? Number.POSITIVE_INFINITY, jobs[i]!.submittedAt, tasks[i]!.id] as const;
          const expected = tasks
            .map((_, i) => i)
            .sort((a, b) => {
              const [da, sa, ia] = key(a);
              const [db, sb, ib] = key(b);
              return da !== db ? da - db : sa !== sb ? sa - sb : ia < ib ? -1 : 1;
            })
            .map((i) => tasks[i]!.id);
          expect(order).toEqual(expected);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('offers higher priority first and stops when told the round is over', () => {
    const low = job('low', { priority: 0 });
    const high = job('high', { priority: 50, submittedAt: 5 });
    const tasks = [task('a', 'low'), task('b', 'high'), task('c', 'high')];
    const order: string[] = [];
    new FairQueue(tasks, [low, high, high], [], { cores: 10, memoryMiB: 10_000 }).drain(
      (i) => (order.push(tasks[i]!.id), true),
      () => order.length < 2,
    );
    expect(order).toEqual(['b', 'c']);
  });
});

describe('placement round with task classes', () => {
  const hostArb = fc.record({ cores: fc.integer({ min: 1, max: 12 }), memGiB: fc.integer({ min: 1, max: 16 }) });
  // Few resource shapes shared by many jobs, so classes fail and get skipped.
  const taskArb = fc.record({ cores: fc.integer({ min: 1, max: 4 }), memGiB: fc.constantFrom(1, 2), floor: fc.constantFrom(null, '0', '1'), priority: fc.nat(2) });

  it('skipping failed classes and ending early leaves no queued task that a PC still has room for', () => {
    fc.assert(
      fc.property(fc.array(hostArb, { minLength: 1, maxLength: 20 }), fc.array(taskArb, { maxLength: 120 }), (hosts, tasks) => {
        // Fewer PCs than the probe limit: every PC is looked at, so a miss is a real "no room".
        const w = new World().pool('p1', { batchWindow: 'always' });
        hosts.forEach((h, i) => w.host(`h${i}`, { resources: res(h.cores, h.memGiB * 1024, 100), labels: { floor: String(i % 2) } }));
        tasks.forEach((t, i) => {
          w.job(`j${i}`, { priority: t.priority, submittedAt: i, constraints: { labels: t.floor === null ? {} : { floor: t.floor } } });
          w.task(`t${String(i).padStart(3, '0')}`, `j${i}`, { resources: res(t.cores, t.memGiB * 1024, 1) });
        });
        const next = applyPlan(w.s, plan(w.s, { id: 'round', type: 'tick', timer: 'placement' }, undefined, MONDAY_2AM));
        const used = new Map<string, { cores: number; mem: number }>();
        for (const t of Object.values(next.tasks)) {
          if (t.state !== 'RUNNING' || !t.hostId) continue;
          const u = used.get(t.hostId) ?? { cores: 0, mem: 0 };
          u.cores += t.resources.cores;
          u.mem += t.resources.memoryMiB;
          used.set(t.hostId, u);
        }
        for (const t of Object.values(next.tasks)) {
          if (t.state !== 'QUEUED') continue;
          const labels = next.jobs[t.jobId]!.constraints.labels;
          for (const h of Object.values(next.hosts)) {
            const u = used.get(h.id) ?? { cores: 0, mem: 0 };
            const room = h.resources.cores - u.cores >= t.resources.cores && h.resources.memoryMiB - u.mem >= t.resources.memoryMiB;
            const allowed = labels.floor === undefined || labels.floor === h.labels.floor;
            expect({ task: t.id, host: h.id, roomLeft: room && allowed }).toEqual({ task: t.id, host: h.id, roomLeft: false });
          }
        }
      }),
      { numRuns: RUNS },
    );
  });
});
