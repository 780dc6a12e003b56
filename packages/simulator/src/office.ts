// The demo office, end to end in one process: the real API (listening on a local port), the
// real scheduler runtime on BullMQ, real agents over real WebSockets, and one accelerated clock
// shared by all of them. The PCs' hypervisors are simulated (hardware-simulated.ts) or, with
// --real, three real libvirt daemons with the tiny test guest (hardware-real.ts).
import { randomBytes } from 'node:crypto';
import { createConnection } from 'node:net';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { agentConfigSchema, enroll, startAgent, type RunningAgent } from '@deskpool/agent';
import { TaskOutputStore, buildApp, createAgentGateway, DeskpoolMetrics, ensureBootstrapAdminToken } from '@deskpool/api';
import { applyMigrations, createDatabase, createPrisma, dropDatabase, type PrismaClient } from '@deskpool/db';
import { ALL_TIMERS, TIMER_KINDS, createSchedulerRuntime, type RuntimeTimer, type SchedulerRuntime } from '@deskpool/scheduler';
import { Redis } from 'ioredis';
import pg from 'pg';
import { ServicesUnavailable } from './errors.js';
import type { OfficeHardware } from './hardware.js';
import { checkRealOffice, realHardware } from './hardware-real.js';
import { simulatedHardware } from './hardware-simulated.js';
import { OfficeFabric } from './office-hypervisor.js';
import type { DemoOptions } from './options.js';
import { buildScenario, type Person, type Scenario } from './scenario.js';
import { summarize, type DemoSummary } from './summary.js';
import { AcceleratedTime } from './time.js';

export { ServicesUnavailable, RealOfficeUnavailable } from './errors.js';
export { BATCH_TASK } from './hardware-simulated.js';

const MIN = 60_000;

/** Simulated interval of each scheduler timer; each also fires at most every 250 ms of real time. */
const TIMER_EVERY_MS: Record<RuntimeTimer, number> = {
  idleCheck: 5 * MIN,
  nightStart: 15 * MIN,
  preStage: 5 * MIN,
  power: 30 * MIN,
  morningDrain: 5 * MIN,
  placement: 2 * MIN,
  heartbeatCheck: 10 * MIN,
  redispatch: 10 * MIN,
  resultSweep: 10 * MIN,
};

export interface DemoIo {
  /** Progress lines and the summary. */
  print(line: string): void;
  /** Stops the story early: everything is closed and runDemoOffice rejects (DemoStopped). */
  signal?: AbortSignal;
}

export class DemoStopped extends Error {
  constructor() {
    super('the demo was stopped before the morning ended');
    this.name = 'DemoStopped';
  }
}

export interface DemoRun {
  summary: DemoSummary;
  apiUrl: string;
  databaseUrl: string;
  /** Bearer token of the demo's admin, for looking around with --stay. */
  adminToken: string;
  /** Stops everything (and drops the database the demo created). */
  close(): Promise<void>;
}

async function checkServices(options: DemoOptions): Promise<void> {
  const client = new pg.Client({ connectionString: options.databaseUrl ?? options.databaseAdminUrl, connectionTimeoutMillis: 3000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.end();
  } catch (err) {
    throw new ServicesUnavailable('PostgreSQL', err);
  }
  const redis = new Redis(options.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    throw new ServicesUnavailable('Redis', err);
  } finally {
    redis.disconnect();
  }
}

/** A database of the demo's own, dropped when the demo ends. */
async function createDemoDatabase(adminUrl: string, name: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const url = await createDatabase(adminUrl, name);
  return { url, drop: () => dropDatabase(adminUrl, name) };
}

/** A tiny REST client with the admin token. */
function restClient(baseUrl: string, token: string) {
  return async function call<T = Record<string, unknown>>(method: string, route: string, body?: unknown, asToken = token): Promise<T> {
    const res = await fetch(`${baseUrl}/api/v1${route}`, {
      method,
      headers: { authorization: `Bearer ${asToken}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${route} answered ${res.status}: ${text.slice(0, 500)}`);
    return (text ? JSON.parse(text) : {}) as T;
  };
}

async function inBatches<T>(items: readonly T[], size: number, fn: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(fn));
}

function signIn(socketPath: string, user: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const conn = createConnection(socketPath, () => conn.write(`${JSON.stringify({ type: 'signin', user })}\n`));
    let reply = '';
    conn.setEncoding('utf8');
    conn.on('data', (d: string) => (reply += d));
    conn.on('end', () => (reply.includes('"ok":true') ? resolve() : reject(new Error(`sign-in refused: ${reply}`))));
    conn.on('error', reject);
  });
}

/** Runs the demo office from the evening to the next morning and returns its summary. */
export async function runDemoOffice(options: DemoOptions, io: DemoIo): Promise<DemoRun> {
  await checkServices(options);
  if (options.real) await checkRealOffice();
  const scenario: Scenario = buildScenario(options.pcs, options.seed);
  const runId = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  const cleanups: (() => Promise<void>)[] = [];
  const closeAll = async (): Promise<void> => {
    for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
    cleanups.length = 0;
  };

  try {
    let databaseUrl = options.databaseUrl;
    if (!databaseUrl) {
      const db = await createDemoDatabase(options.databaseAdminUrl, `deskpool_demo_${runId}`);
      databaseUrl = db.url;
      cleanups.push(db.drop);
    }
    await applyMigrations(databaseUrl);
    const prisma: PrismaClient = createPrisma(databaseUrl);
    cleanups.push(() => prisma.$disconnect());
    const redis = new Redis(options.redisUrl, { maxRetriesPerRequest: null });
    redis.on('error', () => undefined);
    cleanups.push(async () => void redis.disconnect());
    const prefix = `dpdemo-${runId}`;
    cleanups.push(async () => {
      // The run's queues and channels go with it.
      const cleaner = new Redis(options.redisUrl, { maxRetriesPerRequest: 1 });
      cleaner.on('error', () => undefined);
      try {
        for (const pattern of [`${prefix}:*`, `${prefix}-*`]) {
          let cursor = '0';
          do {
            const [next, keys] = await cleaner.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
            cursor = next;
            if (keys.length) await cleaner.del(...keys);
          } while (cursor !== '0');
        }
      } finally {
        cleaner.disconnect();
      }
    });

    const time = new AcceleratedTime(scenario.startMs, options.speed);
    cleanups.push(async () => time.clearAll());
    const stateDirRoot = await fs.mkdtemp(path.join(os.tmpdir(), 'dpdemo-'));
    cleanups.push(() => fs.rm(stateDirRoot, { recursive: true, force: true }));
    const fabric = new OfficeFabric(time);
    const hardwareContext = { scenario, time, fabric, speed: options.speed, tasksPerPc: options.tasksPerPc, taskHours: options.taskHours, workDir: stateDirRoot };
    const hardware: OfficeHardware = options.real ? await realHardware(hardwareContext) : simulatedHardware(hardwareContext);
    cleanups.push(async () => hardware.close((await prisma.batchTask.findMany({ select: { id: true } }).catch(() => [])).map((t) => t.id)));
    const channelPrefix = `${prefix}-agent:`;
    const runtime: SchedulerRuntime = createSchedulerRuntime({
      prisma,
      redis,
      connection: { url: options.redisUrl, maxRetriesPerRequest: null },
      queuePrefix: prefix,
      channelPrefix,
      clock: time,
      concurrency: 2,
      scheduleTimers: false,
      timers: { intervalsMs: TIMER_EVERY_MS, ...hardware.timeouts },
    });
    cleanups.push(() => runtime.close());
    const eventsHandled: Record<string, number> = {};
    runtime.eventsWorker.on('completed', (job) => {
      const type = (job.data as { type?: string; timer?: string }).type === 'tick' ? `tick.${(job.data as { timer?: string }).timer}` : String((job.data as { type?: string }).type);
      eventsHandled[type] = (eventsHandled[type] ?? 0) + 1;
    });

    // The dashboard's timeline and /metrics see the office as a real API process would: samples
    // on the simulated clock (every simulated minute, checked every 250 ms of real time) and
    // operation/tap histograms observed from the agents' events.
    const metrics = new DeskpoolMetrics({ prisma, redis, clock: time.api, queuePrefix: prefix });
    cleanups.push(() => metrics.close());
    // Batch tasks' console output is stored, as in the real API (job logs; --real checks the steps).
    const taskOutput = new TaskOutputStore(prisma, { clock: time.api });
    const gateway = createAgentGateway({ prisma, redis, clock: time.api, channelPrefix, keyPrefix: `${prefix}-gw:`, heartbeatIntervalSeconds: 600, events: metrics.observeAgentEvents(runtime.events), taskOutput });
    metrics.countConnectedAgentsWith(() => gateway.registry.size);
    const app = await buildApp({ logLevel: false }, { prisma, redis, clock: time.api, scheduler: runtime.events, agentRoutes: gateway.plugin, metrics, dashboard: { sampler: { tickMs: 250 } } });
    await app.listen({ host: '127.0.0.1', port: 0 });
    cleanups.push(() => app.close());
    const address = app.server.address();
    const apiUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    const adminToken = `dpa_demo_${randomBytes(24).toString('hex')}`;
    await ensureBootstrapAdminToken(prisma, adminToken);
    const api = restClient(apiUrl, adminToken);
    io.print(`deskpool demo: API at ${apiUrl}, dashboard ${apiUrl}/dashboard, database ${new URL(databaseUrl).pathname.slice(1)}, ${hardware.describe}, speed ${options.speed}x, seed ${options.seed}`);

    // --- the office, set up through the REST API and real enrollment --------------------
    const pool = await api<{ id: string }>('POST', '/pools', {
      name: 'office',
      timeZone: 'UTC',
      idleThresholdMinutes: 15,
      nightWindowStart: '19:00',
      nightWindowEnd: '07:00',
      storageMode: 'shared',
      preStaging: true,
      // Sleeping PCs need Wake-on-LAN, which the agent protocol cannot carry yet.
      powerManagement: false,
      ...hardware.poolPolicy,
    });
    const users: string[] = [];
    const hosts: string[] = [];
    const vms: string[] = [];
    const pcOf = (pc: number) => {
      const found = hardware.pcs[pc];
      if (!found) throw new Error(`PC ${pc} has no hypervisor`);
      return found;
    };
    await inBatches(scenario.people, 8, async (p) => {
      const user = await api<{ id: string }>('POST', '/users', { name: p.name, role: 'user', poolId: pool.id });
      users[p.index] = user.id;
      const token = await api<{ token: string }>('POST', '/enrollment-tokens', { poolId: pool.id, note: `PC of ${p.name}` });
      const stateDir = path.join(stateDirRoot, `pc${p.homePc}`);
      const enrolled = await enroll({ serverUrl: apiUrl, token: token.token, stateDir, inventory: pcOf(p.homePc).inventory });
      hosts[p.homePc] = enrolled.response.hostId;
      await api('PATCH', `/hosts/${enrolled.response.hostId}`, { ownerUserId: user.id });
      await api('PATCH', `/users/${user.id}`, { homeHostId: enrolled.response.hostId });
      const desktop = hardware.desktopOf(p);
      const vm = await api<{ id: string }>('POST', '/vms', { name: desktop.name, ownerUserId: user.id, vcpus: desktop.vcpus, memoryMiB: desktop.memoryMiB, diskGiB: desktop.diskGiB, diskLocation: desktop.diskLocation });
      vms[p.index] = vm.id;
      if (hardware.desktopsRunningAtStart) {
        // Booted at the owner's PC before the clock started: adopted as it runs, the way an
        // admin adopts an existing domain.
        await prisma.desktopVm.update({ where: { id: vm.id }, data: { state: 'RUNNING', currentHostId: enrolled.response.hostId, fencingGeneration: 1, stateChangedAt: new Date(time.now()) } });
        fabric.markRunning(desktop.name, p.homePc);
      }
      // The office's history: when they came in on the four previous Thursdays.
      await prisma.user.update({ where: { id: user.id }, data: { arrivals: p.history.map((t) => new Date(t)) } });
    });
    const submitter = await api<{ id: string }>('POST', '/users', { name: 'render-team', role: 'submitter', poolId: pool.id });
    const submitterToken = await api<{ token: string }>('POST', '/api-tokens', { name: 'render-team', role: 'submitter', userId: submitter.id });

    // --- agents ---------------------------------------------------------------------------
    time.begin();
    const agents: RunningAgent[] = [];
    cleanups.push(async () => void (await Promise.all(agents.map((a) => a.stop().catch(() => undefined)))));
    const credentials = await Promise.all(
      scenario.people.map(async (p) => JSON.parse(await fs.readFile(path.join(stateDirRoot, `pc${p.homePc}`, 'credential.json'), 'utf8')) as { serverUrl: string; hostId: string; credential: string; idleThresholdSeconds?: number; enrolledAt: string }),
    );
    for (const p of scenario.people) {
      const pc = p.homePc;
      const stateDir = path.join(stateDirRoot, `pc${pc}`);
      const elapsed = time.now() - scenario.startMs;
      const trace = (scenario.traces[pc] ?? []).filter((o) => o >= elapsed).map((o) => JSON.stringify({ offsetMs: o - elapsed, event: 'activity' }));
      const tracePath = path.join(stateDir, 'presence.trace');
      await fs.writeFile(tracePath, `${trace.join('\n')}\n`);
      const config = agentConfigSchema.parse({
        serverUrl: apiUrl,
        stateDir,
        presenceSources: [{ kind: 'trace', path: tracePath }],
        driver: pcOf(pc).agentDriver,
        heartbeatIntervalSeconds: 600,
        domainPollSeconds: 1800,
        // Guests powering off are seen as hypervisor events; the poll is only a fallback.
        batchPollSeconds: 1800,
        inventoryIntervalSeconds: 86_400,
        reconnectInitialMs: 200,
        reconnectMaxMs: 5000,
      });
      const credential = credentials[pc];
      if (!credential) throw new Error(`PC ${pc} has no credential`);
      const { driver, libvirtUri, executor, inventory } = pcOf(pc);
      agents.push(
        await startAgent({
          config,
          credential,
          driver,
          clock: time,
          libvirtUri,
          ...(executor ? { executor } : {}),
          inventory: async () => inventory,
          log: () => undefined,
        }),
      );
    }

    // --- the scheduler's timers on the shared clock ----------------------------------------
    let running = true;
    const loops: Promise<void>[] = [];
    cleanups.push(async () => {
      running = false;
      await Promise.all(loops);
    });
    const every = (simMs: number, fn: () => Promise<void>): void => {
      const realMs = Math.max(250, simMs / options.speed);
      loops.push(
        (async () => {
          while (running) {
            await new Promise((r) => setTimeout(r, realMs));
            if (!running) break;
            await fn().catch((err: unknown) => io.print(`  (background step failed: ${(err as Error).message})`));
          }
        })(),
      );
    };
    const backlog = (): Promise<number> => runtime.events.queue.getJobCountByTypes('waiting', 'prioritized', 'delayed');
    for (const timer of ALL_TIMERS) {
      every(TIMER_EVERY_MS[timer], async () => {
        // Accelerated, ticks would arrive faster than one pool's events can be planned; a tick
        // finding others still queued is dropped (the next one looks at the same state).
        if ((TIMER_KINDS as readonly string[]).includes(timer) && (await backlog()) >= 3) return;
        await runtime.runTimer(timer);
      });
    }

    // --- people: pins in the afternoon, sign-ins at other PCs in the morning -----------------
    const scheduled: Promise<void>[] = [];
    for (const p of scenario.people.filter((x) => x.pins)) {
      scheduled.push(time.until(scenario.startMs + 10 * MIN).then(() => api('POST', `/vms/${vms[p.index]}/pin`, {}).then(() => undefined)));
    }
    const signInAt = new Map<number, number>();
    for (const s of scenario.signIns) {
      const person = scenario.people[s.person];
      if (!person) continue;
      scheduled.push(
        time.until(s.at).then(async () => {
          signInAt.set(s.person, time.now());
          await signIn(path.join(stateDirRoot, `pc${s.pc}`, 'agent.sock'), person.name);
        }),
      );
    }

    // --- the night's batch workload, submitted through the REST API --------------------------
    const submitted: { id: string; taskCount: number }[] = [];
    for (const plan of hardware.jobs) {
      scheduled.push(
        time.until(Date.UTC(2026, 0, 7, 18, 0)).then(async () => {
          const job = await api<{ id: string }>(
            'POST',
            '/jobs',
            { name: plan.name, taskCount: plan.taskCount, command: plan.command, cores: plan.cores, memoryMiB: plan.memoryMiB, poolId: pool.id, checkpointable: true, priority: 100 },
            submitterToken.token,
          );
          submitted.push({ id: job.id, taskCount: plan.taskCount });
        }),
      );
    }

    // --- the batch guests: simulated ones end once they had their CPU time, real ones by themselves
    every(60_000, () => hardware.everyMinute());

    // --- live progress ---------------------------------------------------------------------
    const progressLine = async (): Promise<string> => {
      const [vmStates, taskStates, queued] = await Promise.all([
        prisma.desktopVm.groupBy({ by: ['state'], _count: { _all: true } }),
        prisma.batchTask.groupBy({ by: ['state'], _count: { _all: true } }),
        backlog(),
      ]);
      const vm = (s: string): number => vmStates.find((x) => x.state === s)?._count._all ?? 0;
      const task = (s: string): number => taskStates.find((x) => x.state === s)?._count._all ?? 0;
      const clock = new Date(time.now()).toISOString().slice(11, 16);
      const day = time.now() < Date.UTC(2026, 0, 8) ? 'Wed' : 'Thu';
      return `${day} ${clock}  desktops running ${vm('RUNNING')}, suspended ${vm('SUSPENDED')}, moving ${vm('SUSPENDING') + vm('RESTORING') + vm('MIGRATING')}  |  batch running ${task('running') + task('placed')}, checkpointed ${task('checkpointed')}, queued ${task('queued')}, done ${task('succeeded')}  |  events queued ${queued}`;
    };
    const progressTimer = options.progressEveryMs > 0 ? setInterval(() => void progressLine().then(io.print, () => undefined), options.progressEveryMs) : undefined;
    cleanups.push(async () => clearInterval(progressTimer));

    const stopped = new Promise<never>((_, reject) => {
      if (io.signal?.aborted) reject(new DemoStopped());
      io.signal?.addEventListener('abort', () => reject(new DemoStopped()), { once: true });
    });
    stopped.catch(() => undefined);
    await Promise.race([time.until(scenario.endMs), stopped]);
    if (hardware.settleAfterStoryMs > 0) {
      const deadline = Date.now() + hardware.settleAfterStoryMs;
      while (Date.now() < deadline && !io.signal?.aborted && (await prisma.desktopVm.count({ where: { state: { in: ['SUSPENDING', 'RESTORING', 'MIGRATING'] } } })) > 0) {
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    if (io.signal?.aborted) throw new DemoStopped();
    clearInterval(progressTimer);
    running = false;
    await Promise.all(loops);
    for (const r of await Promise.allSettled(scheduled)) {
      if (r.status === 'rejected') io.print(`  (a scheduled step failed: ${(r.reason as Error).message})`);
    }
    io.print(await progressLine());

    await hardware.everyMinute();
    const tasks = await prisma.batchTask.findMany({ select: { id: true, state: true, jobId: true, index: true } });
    const taskOutputOf = async (taskId: string): Promise<string> => {
      const task = tasks.find((t) => t.id === taskId);
      if (!task) return '';
      const res = await fetch(`${apiUrl}/api/v1/jobs/${task.jobId}/tasks/${task.index}/logs`, { headers: { authorization: `Bearer ${adminToken}` } });
      if (!res.ok) throw new Error(`the logs of task ${taskId} answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
      return res.text();
    };
    const reports = await hardware.batchReports(taskOutputOf);
    const desktopOf = (p: Person): string => hardware.desktopOf(p).name;
    const summary = summarize({
      scenario,
      intervals: fabric.intervals,
      desktopOf,
      signInAt: (p) => signInAt.get(p.index) ?? null,
      taskStates: tasks.map((t) => t.state),
      tasksSubmitted: submitted.reduce((n, j) => n + j.taskCount, 0),
      ...reports,
      eventsHandled,
      batchCores: hardware.batchCores,
      pcs: options.pcs,
      extraInvariants: await hardware.extraChecks(taskOutputOf, tasks.map((t) => t.id)),
    });
    return { summary, apiUrl, databaseUrl, adminToken, close: closeAll };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
