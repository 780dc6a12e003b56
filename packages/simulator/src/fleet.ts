// Several days of an office, end to end in one process: the real API on a local port, the real
// scheduler runtime on BullMQ, one real agent per PC over a real WebSocket (simulated
// hypervisor, presence replayed from a trace), one accelerated clock. Presence comes from
// presence.ts (generated or a CSV), batch work from workload.ts; the report from fleet-report.ts.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { promises as fs } from 'node:fs';
import { createConnection } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { agentConfigSchema, enroll, startAgent, type RunningAgent } from '@deskpool/agent';
import { buildApp, createAgentGateway, ensureBootstrapAdminToken } from '@deskpool/api';
import { applyMigrations, createDatabase, createPrisma, dropDatabase, type PrismaClient } from '@deskpool/db';
import { SimulatedDriver, type HypervisorDriver } from '@deskpool/kvm-driver';
import type { HostInventory } from '@deskpool/protocol';
import { ALL_TIMERS, TIMER_KINDS, createSchedulerRuntime, type RuntimeTimer, type SchedulerRuntime } from '@deskpool/scheduler';
import { Redis } from 'ioredis';
import pg from 'pg';
import { renderFleetHtml } from './fleet-html.js';
import { computeFleetReport, type DemandSample, type EventLatency, type FleetReport, type SleepInterval } from './fleet-report.js';
import { FleetOptionsInvalid, type FleetOptions } from './fleet-options.js';
import { OfficeFabric, desktopImage, officeHypervisor, type RunInterval } from './office-hypervisor.js';
import { ServicesUnavailable } from './office.js';
import { activityOf, arrivalHistory, generatePresence, parsePresenceCsv, type PresenceDay } from './presence.js';
import { AcceleratedTime } from './time.js';
import { DEFAULT_WORKLOAD, generateWorkload, type BatchJobPlan } from './workload.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
export const FLEET_PC = { cores: 8, memoryMiB: 16384, diskGiB: 500 } as const;
const DESKTOP = { vcpus: 2, memoryMiB: 4096 } as const;
/** Monday 12 January 2026, 00:00 UTC: day one of every multi-day run. */
export const FLEET_START_MS = Date.UTC(2026, 0, 12);
const NIGHT = { start: '19:00', end: '07:00', startMinute: 19 * 60, endMinute: 7 * 60 } as const;
/** Batch tasks of 4 or 8 cores (a VM each), about 8 hours of work: a night's worth per PC. */
const FLEET_TASK_SHAPES = { coreChoices: [4, 8], meanTaskHours: 8, meanTasksPerJob: 20 } as const;
/** Activity is reported this often while someone sits at a PC (well under the idle threshold). */
const ACTIVITY_EVERY_MS = 5 * MIN;

const TIMER_EVERY_MS: Record<RuntimeTimer, number> = {
  idleCheck: 5 * MIN,
  nightStart: 15 * MIN,
  preStage: 5 * MIN,
  power: 15 * MIN,
  morningDrain: 5 * MIN,
  placement: 5 * MIN,
  heartbeatCheck: 30 * MIN,
  redispatch: 15 * MIN,
  resultSweep: 15 * MIN,
};

export interface FleetIo {
  print(line: string): void;
}

export interface FleetRun {
  report: FleetReport;
  /** Paths written (report.json, report.html), if a report directory was given. */
  files: string[];
  /** What ran on which PC when, as the simulated hypervisors recorded it. */
  intervals: readonly RunInterval[];
  apiUrl: string;
  close(): Promise<void>;
}

const personName = (i: number): string => `p${String(i + 1).padStart(4, '0')}`;
const desktopOf = (i: number): string => `desk-${personName(i)}`;

function macOf(pc: number): string {
  const hex = (pc + 1).toString(16).padStart(4, '0');
  return `52:54:00:01:${hex.slice(0, 2)}:${hex.slice(2)}`;
}

function inventoryOf(pc: number): HostInventory {
  return {
    hostname: `pc-${String(pc + 1).padStart(4, '0')}`,
    cpuCores: FLEET_PC.cores,
    cpuModel: 'simulated office PC',
    memoryMiB: FLEET_PC.memoryMiB,
    diskGiB: FLEET_PC.diskGiB,
    gpus: [],
    macAddresses: [macOf(pc)],
    hypervisor: { kvm: true, libvirtVersion: null, qemuVersion: null, liveMigration: true, hotplugCpu: true, hotplugMemory: true },
    agentVersion: '0.1.0',
    os: 'simulated',
  };
}

async function checkServices(options: FleetOptions): Promise<void> {
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

/** The MAC a Wake-on-LAN magic packet is for (6 × 0xff, then the MAC 16 times), or null. */
export function magicPacketTarget(packet: Buffer): string | null {
  if (packet.length < 102 || !packet.subarray(0, 6).every((b) => b === 0xff)) return null;
  const mac = packet.subarray(6, 12);
  for (let k = 1; k < 16; k += 1) if (!packet.subarray(6 + k * 6, 12 + k * 6).equals(mac)) return null;
  return [...mac].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** Which PCs sleep when: the agents' power hook and the Wake-on-LAN listener write here. */
class PowerRecord {
  readonly sleeps: SleepInterval[] = [];
  private readonly open = new Map<number, SleepInterval>();
  constructor(private readonly clock: { now(): number }) {}
  sleep(pc: number): void {
    if (this.open.has(pc)) return;
    const s: SleepInterval = { pc, from: this.clock.now(), until: null };
    this.open.set(pc, s);
    this.sleeps.push(s);
  }
  wake(pc: number): void {
    const s = this.open.get(pc);
    if (!s) return;
    s.until = this.clock.now();
    this.open.delete(pc);
  }
  asleep(pc: number): boolean {
    return this.open.has(pc);
  }
}


/**
 * The standard batch guest powers off when its command is done; here the simulator decides when
 * that is (the task's work, from the workload), so batch guests are defined without the
 * power-off flag and run until the simulator ends them (SimulatedDriver.guestExit).
 */
function batchGuestsRunUntilTold(driver: HypervisorDriver): HypervisorDriver {
  const define: HypervisorDriver['define'] = (spec, opts) => {
    const boot = (spec as { boot?: { cmdline?: string } }).boot;
    if (!spec.name.startsWith('dp-task-') || !boot?.cmdline) return driver.define(spec, opts);
    return driver.define({ ...spec, boot: { ...boot, cmdline: boot.cmdline.replace(/\s*deskpool\.poweroff=1/g, '') } } as typeof spec, opts);
  };
  return new Proxy(driver, { get: (target, prop, receiver) => (prop === 'define' ? define : Reflect.get(target, prop, receiver)) as unknown });
}

interface DatabaseSetup {
  people: number[];
  poolOfPc(pc: number): string;
  history: number[][];
  apiUrl: string;
  stateDirRoot: string;
  /** Filled in: desktop VM id per person. */
  vmIds: string[];
  enrolledAt: Date;
}

/**
 * The office's rows in bulk: users, hosts with their credentials (what enrollment would have
 * written), desktops, arrival history; and each PC's credential file for its agent.
 */
async function setUpInDatabase(prisma: PrismaClient, s: DatabaseSetup): Promise<void> {
  const ids = s.people.map(() => ({ user: randomUUID(), host: randomUUID(), vm: randomUUID(), secret: `dph_${randomBytes(32).toString('base64url')}` }));
  const chunk = 500;
  for (let k = 0; k < s.people.length; k += chunk) {
    const part = s.people.slice(k, k + chunk);
    await prisma.user.createMany({ data: part.map((i) => ({ id: ids[i]?.user ?? '', name: personName(i), role: 'user' as const, poolId: s.poolOfPc(i), arrivals: (s.history[i] ?? []).map((t) => new Date(t)) })) });
    await prisma.host.createMany({
      data: part.map((i) => {
        const inv = inventoryOf(i);
        return { id: ids[i]?.host ?? '', name: inv.hostname, poolId: s.poolOfPc(i), ownerUserId: ids[i]?.user ?? null, mac: macOf(i), cores: inv.cpuCores, memoryMiB: inv.memoryMiB, diskGiB: inv.diskGiB, inventory: inv as unknown as object, agentVersion: inv.agentVersion };
      }),
    });
    await prisma.hostCredential.createMany({ data: part.map((i) => ({ hostId: ids[i]?.host ?? '', secretHash: createHash('sha256').update(ids[i]?.secret ?? '', 'utf8').digest('hex') })) });
    await prisma.desktopVm.createMany({
      data: part.map((i) => ({ id: ids[i]?.vm ?? '', name: desktopOf(i), ownerUserId: ids[i]?.user ?? '', poolId: s.poolOfPc(i), vcpus: DESKTOP.vcpus, memoryMiB: DESKTOP.memoryMiB, maxVcpus: DESKTOP.vcpus, maxMemoryMiB: DESKTOP.memoryMiB, diskGiB: 40, diskLocation: 'shared:/desktops' })),
    });
  }
  await prisma.$executeRaw`UPDATE users u SET home_host_id = h.id FROM hosts h WHERE h.owner_user_id = u.id AND u.home_host_id IS NULL`;
  for (const i of s.people) {
    const id = ids[i];
    if (!id) continue;
    s.vmIds[i] = id.vm;
    const dir = path.join(s.stateDirRoot, `pc${i}`);
    await fs.mkdir(dir, { recursive: true });
    await fs.writeFile(path.join(dir, 'credential.json'), JSON.stringify({ serverUrl: s.apiUrl, hostId: id.host, credential: id.secret, idleThresholdSeconds: 900, enrolledAt: s.enrolledAt.toISOString() }));
  }
}

/** Runs the office for `options.days` days from Monday 00:00 and returns its report. */
export async function runFleet(options: FleetOptions, io: FleetIo): Promise<FleetRun> {
  await checkServices(options);
  const startMs = FLEET_START_MS + options.startHour * HOUR;
  const endMs = options.hours !== undefined ? startMs + options.hours * HOUR : FLEET_START_MS + options.days * DAY;
  if (endMs <= startMs) throw new FleetOptionsInvalid([`--start-hour ${options.startHour} leaves nothing of ${options.days} day(s); give --hours`]);
  const spanDays = Math.ceil((endMs - FLEET_START_MS) / DAY);
  const presence: PresenceDay[] = options.presenceCsv ? parsePresenceCsv(await fs.readFile(options.presenceCsv, 'utf8'), options.pcs) : generatePresence({ people: options.pcs, firstDayMs: FLEET_START_MS, days: spanDays, seed: options.seed });
  // Days overlapping the window: their activity is replayed; those starting in it are mornings.
  const overlapping = presence.filter((d) => d.leavesAt > startMs && d.arrivesAt < endMs);
  const inWindow = overlapping.filter((d) => d.arrivesAt >= startMs);
  const atDeskAtStart = overlapping.filter((d) => d.arrivesAt < startMs);
  const history = arrivalHistory(options.pcs, FLEET_START_MS, options.historyWeeks, options.seed);
  // Monday's earlier arrivals belong to the history too when the run starts later in the day.
  for (const d of atDeskAtStart) history[d.person]?.push(d.arrivesAt);
  const nightCoreHours = options.pcs * FLEET_PC.cores * 12;
  const jobs: BatchJobPlan[] = (options.demand > 0 ? generateWorkload({ ...DEFAULT_WORKLOAD, ...FLEET_TASK_SHAPES, firstDayMs: FLEET_START_MS, days: spanDays, seed: options.seed, coreHoursPerDay: options.demand * nightCoreHours }) : []).filter((j) => j.submitAt < endMs);
  // Work submitted before the window starts is submitted at its start.
  for (const j of jobs) j.submitAt = Math.max(j.submitAt, startMs);

  const runId = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  const cleanups: (() => Promise<void>)[] = [];
  const closeAll = async (): Promise<void> => {
    for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
    cleanups.length = 0;
  };
  try {
    let databaseUrl = options.databaseUrl;
    if (!databaseUrl) {
      const name = `deskpool_fleet_${runId}`;
      databaseUrl = await createDatabase(options.databaseAdminUrl, name);
      cleanups.push(() => dropDatabase(options.databaseAdminUrl, name));
    }
    await applyMigrations(databaseUrl);
    const prisma: PrismaClient = createPrisma(databaseUrl);
    cleanups.push(() => prisma.$disconnect());
    const redis = new Redis(options.redisUrl, { maxRetriesPerRequest: null });
    redis.on('error', () => undefined);
    cleanups.push(async () => void redis.disconnect());
    const prefix = `dpfleet-${runId}`;
    cleanups.push(async () => {
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

    const time = new AcceleratedTime(startMs, options.speed);
    cleanups.push(async () => time.clearAll());
    const channelPrefix = `${prefix}-agent:`;
    const runtime: SchedulerRuntime = createSchedulerRuntime({
      prisma,
      redis,
      connection: { url: options.redisUrl, maxRetriesPerRequest: null },
      queuePrefix: prefix,
      channelPrefix,
      clock: time,
      concurrency: options.concurrency,
      scheduleTimers: false,
      // Simulated time: a PC is lost after three silent hours (a stalled event loop of a second
      // is many simulated minutes here).
      timers: { intervalsMs: TIMER_EVERY_MS, heartbeatTimeoutMs: 3 * HOUR, redispatchAfterMs: 20 * MIN },
    });
    cleanups.push(() => runtime.close());
    const latencies: EventLatency[] = [];
    // Ticks of each timer queued and handled so far (see the timers below); two running counts,
    // so a tick handled before its queueing was counted still balances out.
    const ticksQueued = new Map<string, number>();
    const ticksHandled = new Map<string, number>();
    const lastQueuedAt = new Map<string, number>();
    const ticksPending = (timer: string): number => (ticksQueued.get(timer) ?? 0) - (ticksHandled.get(timer) ?? 0);
    const tickDone = (data: { type?: string; timer?: string }): void => {
      if (data.type === 'tick' && data.timer) ticksHandled.set(data.timer, (ticksHandled.get(data.timer) ?? 0) + 1);
    };
    runtime.eventsWorker.on('completed', (job) => {
      const data = job.data as { type?: string; timer?: string };
      tickDone(data);
      const type = data.type === 'tick' ? `tick.${data.timer}` : String(data.type);
      if (job.processedOn && job.finishedOn) latencies.push({ type, queueMs: job.processedOn - job.timestamp, handleMs: job.finishedOn - job.processedOn });
    });
    runtime.eventsWorker.on('failed', (job) => {
      if (job) tickDone(job.data as { type?: string; timer?: string });
    });

    const gateway = createAgentGateway({ prisma, redis, clock: time.api, channelPrefix, keyPrefix: `${prefix}-gw:`, heartbeatIntervalSeconds: 3600, events: runtime.events });
    const app = await buildApp({ logLevel: false }, { prisma, redis, clock: time.api, scheduler: runtime.events, agentRoutes: gateway.plugin });
    await app.listen({ host: '127.0.0.1', port: 0 });
    cleanups.push(() => app.close());
    const address = app.server.address();
    const apiUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    const adminToken = `dpa_fleet_${randomBytes(24).toString('hex')}`;
    await ensureBootstrapAdminToken(prisma, adminToken);
    const api = restClient(apiUrl, adminToken);
    const poolCount = Math.ceil(options.pcs / options.poolSize);
    io.print(
      `deskpool fleet: API at ${apiUrl}, ${options.pcs} PCs in ${poolCount} pool(s), ${options.days} day(s) from Monday, speed ${options.speed}x, seed ${options.seed}, ` +
        `${inWindow.length} person-days at the office, ${jobs.length} batch jobs (${jobs.reduce((s, j) => s + j.taskCount, 0)} tasks), power management ${options.powerManagement ? 'on' : 'off'}`,
    );

    // --- the office, through the REST API and real enrollment ---------------------------------
    const pools: string[] = [];
    for (let k = 0; k < poolCount; k += 1) {
      const pool = await api<{ id: string }>('POST', '/pools', {
        name: `floor-${k + 1}`,
        timeZone: 'UTC',
        idleThresholdMinutes: 15,
        nightWindowStart: NIGHT.start,
        nightWindowEnd: NIGHT.end,
        storageMode: 'shared',
        preStaging: true,
        powerManagement: options.powerManagement,
      });
      pools.push(pool.id);
    }
    const poolOfPc = (pc: number): string => pools[Math.floor(pc / options.poolSize)] ?? pools[0] ?? '';
    const stateDirRoot = await fs.mkdtemp(path.join(os.tmpdir(), 'dpfleet-'));
    cleanups.push(() => fs.rm(stateDirRoot, { recursive: true, force: true }));
    const people = [...Array(options.pcs).keys()];
    const setupStarted = performance.now();
    const vmIds: string[] = [];
    if (options.setup === 'api') {
      await inBatches(people, 16, async (i) => {
        const user = await api<{ id: string }>('POST', '/users', { name: personName(i), role: 'user', poolId: poolOfPc(i) });
        const token = await api<{ token: string }>('POST', '/enrollment-tokens', { poolId: poolOfPc(i), note: `PC of ${personName(i)}` });
        const enrolled = await enroll({ serverUrl: apiUrl, token: token.token, stateDir: path.join(stateDirRoot, `pc${i}`), inventory: inventoryOf(i) });
        await api('PATCH', `/hosts/${enrolled.response.hostId}`, { ownerUserId: user.id });
        await api('PATCH', `/users/${user.id}`, { homeHostId: enrolled.response.hostId });
        const vm = await api<{ id: string }>('POST', '/vms', { name: desktopOf(i), ownerUserId: user.id, vcpus: DESKTOP.vcpus, memoryMiB: DESKTOP.memoryMiB, diskGiB: 40, diskLocation: 'shared:/desktops' });
        vmIds[i] = vm.id;
        const past = history[i] ?? [];
        if (past.length) await prisma.user.update({ where: { id: user.id }, data: { arrivals: past.map((t) => new Date(t)) } });
      });
    } else {
      await setUpInDatabase(prisma, { people, poolOfPc, history, apiUrl, stateDirRoot, vmIds, enrolledAt: new Date(startMs) });
    }
    const submitter = await api<{ id: string }>('POST', '/users', { name: 'batch-users', role: 'submitter', poolId: pools[0] });
    const submitterToken = await api<{ token: string }>('POST', '/api-tokens', { name: 'batch-users', role: 'submitter', userId: submitter.id });
    io.print(`  set up ${options.pcs} PCs, users and desktops (${options.setup === 'api' ? 'through the API, real enrollment' : 'in the database, in bulk'}) in ${((performance.now() - setupStarted) / 1000).toFixed(0)} s`);

    // --- simulated PCs, power and Wake-on-LAN ------------------------------------------------
    const fabric = new OfficeFabric(time);
    const power = new PowerRecord(time);
    const pcOfMac = new Map(people.map((i) => [macOf(i), i]));
    const wol = createSocket('udp4');
    wol.on('message', (msg) => {
      const mac = magicPacketTarget(msg);
      const pc = mac ? pcOfMac.get(mac) : undefined;
      if (pc !== undefined) power.wake(pc);
    });
    await new Promise<void>((resolve) => wol.bind(0, '127.0.0.1', resolve));
    cleanups.push(async () => void wol.close());
    const wolPort = wol.address().port;
    const bases: SimulatedDriver[] = [];
    const drivers = people.map((i) => {
      fabric.addImage(desktopImage(desktopOf(i), DESKTOP.vcpus, DESKTOP.memoryMiB));
      const base = new SimulatedDriver({ hostname: inventoryOf(i).hostname, cpus: FLEET_PC.cores, memoryMiB: FLEET_PC.memoryMiB, clock: time });
      bases[i] = base;
      return batchGuestsRunUntilTold(officeHypervisor(fabric, i, base));
    });
    // Desktops of people who came in that day before the run starts are still running (idle
    // desktops are suspended only in the night window), whether or not they are still there.
    const deskAtStart = new Set(presence.filter((d) => d.arrivesAt < startMs && d.arrivesAt >= startMs - (startMs % DAY) && d.pc === d.person).map((d) => d.pc));
    // (The boots complete once the clock runs; their agents find them running.)
    const boots: Promise<unknown>[] = [];
    for (const pc of deskAtStart) {
      boots.push(drivers[pc]?.start(desktopOf(pc)) ?? Promise.resolve());
      const vmId = vmIds[pc];
      const hostId = (await prisma.host.findFirst({ where: { name: inventoryOf(pc).hostname }, select: { id: true } }))?.id;
      if (vmId && hostId) await prisma.desktopVm.update({ where: { id: vmId }, data: { state: 'RUNNING', currentHostId: hostId, fencingGeneration: 1 } });
    }

    // The clock stands still while the agents connect (their timers count from begin()).
    const agents: RunningAgent[] = [];
    cleanups.push(async () => void (await Promise.all(agents.map((a) => a.stop().catch(() => undefined)))));
    const tracesByPc: number[][] = people.map(() => []);
    for (const d of overlapping) tracesByPc[d.pc]?.push(...activityOf(d, ACTIVITY_EVERY_MS).filter((t) => t >= startMs && t < endMs));
    const agentsStarted = performance.now();
    await inBatches(people, 25, async (i) => {
      const stateDir = path.join(stateDirRoot, `pc${i}`);
      const credential = JSON.parse(await fs.readFile(path.join(stateDir, 'credential.json'), 'utf8')) as { serverUrl: string; hostId: string; credential: string; enrolledAt: string };
      const now = time.now();
      const trace = (tracesByPc[i] ?? []).filter((t) => t >= now).sort((a, b) => a - b);
      const tracePath = path.join(stateDir, 'presence.trace');
      await fs.writeFile(tracePath, `${trace.map((t) => JSON.stringify({ offsetMs: t - now, event: 'activity' })).join('\n')}\n`);
      // A tap on a sleeping PC wakes it (USB wake): awake from the day's first activity on.
      for (const d of inWindow) if (d.pc === i && d.arrivesAt >= now) time.setTimeout(() => power.wake(i), d.arrivesAt - now);
      const config = agentConfigSchema.parse({
        serverUrl: apiUrl,
        stateDir,
        presenceSources: [{ kind: 'trace', path: tracePath }],
        driver: { kind: 'simulated' },
        heartbeatIntervalSeconds: 3600,
        domainPollSeconds: 3600,
        inventoryIntervalSeconds: 86_400,
        reconnectInitialMs: 200,
        reconnectMaxMs: 5000,
      });
      const driver = drivers[i];
      if (!driver) throw new Error(`PC ${i} has no driver`);
      agents.push(
        await startAgent({
          config,
          credential,
          driver,
          clock: time,
          libvirtUri: null,
          inventory: async () => inventoryOf(i),
          // The PC suspends to RAM; its agent's connection is kept in the simulation (see docs/simulator.md).
          power: async () => power.sleep(i),
          // Checkpoints live on the office's shared storage (the simulated PCs' files).
          executor: { wakeOnLan: { address: '127.0.0.1', port: wolPort }, stateFileExists: async (file: string) => fabric.holderOf(file) !== undefined },
          log: () => undefined,
        }),
      );
    });
    // Every agent has said hello before simulated time starts.
    const hostIds = (await prisma.host.findMany({ select: { id: true } })).map((h) => h.id);
    for (let waited = 0; waited < 120_000; waited += 500) {
      const online = await prisma.host.count({ where: { id: { in: hostIds }, onlineState: 'online' } });
      if (online >= options.pcs) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    io.print(`  ${agents.length} agents connected in ${((performance.now() - agentsStarted) / 1000).toFixed(0)} s; simulated time starts`);
    time.begin();
    await Promise.all(boots);

    // --- the scheduler's timers on the shared clock ------------------------------------------
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
        // A tick is dropped while the previous one of the same timer is still queued: planning
        // is the bottleneck when accelerated, and that queued tick will see the same state.
        // (Dropping on any backlog starved placement when presence kept the queue busy.)
        const isTick = (TIMER_KINDS as readonly string[]).includes(timer);
        // A tick that was never added (a duplicate id within one slot) must not hold its timer:
        // after four of its periods the count starts over.
        const periodMs = Math.max(250, TIMER_EVERY_MS[timer] / options.speed);
        if (isTick && ticksPending(timer) > 0 && performance.now() - (lastQueuedAt.get(timer) ?? 0) < 4 * periodMs) return;
        if (isTick && ticksPending(timer) > 0) ticksQueued.set(timer, ticksHandled.get(timer) ?? 0);
        const queued = await runtime.runTimer(timer);
        if (isTick) {
          ticksQueued.set(timer, (ticksQueued.get(timer) ?? 0) + queued);
          lastQueuedAt.set(timer, performance.now());
        }
      });
    }

    // --- hot-desking sign-ins ------------------------------------------------------------------
    const scheduled: Promise<void>[] = [];
    // A failed step is printed and counted, never an unhandled rejection (the run goes on).
    let failedSteps = 0;
    const step = (p: Promise<void>, what: string): void => {
      scheduled.push(
        p.catch((err: unknown) => {
          failedSteps += 1;
          io.print(`  (${what} failed: ${(err as Error).message})`);
        }),
      );
    };
    const signIns = new Map<string, number>();
    for (const d of inWindow) {
      if (d.pc === d.person) continue;
      step(
        time.until(d.arrivesAt + 20_000).then(async () => {
          signIns.set(`${d.person}/${d.date}`, time.now());
          await signIn(path.join(stateDirRoot, `pc${d.pc}`, 'agent.sock'), personName(d.person));
        }),
        `sign-in of ${personName(d.person)} at pc ${d.pc + 1}`,
      );
    }

    // --- batch jobs, submitted through the REST API when due ----------------------------------
    interface TaskInfo {
      cores: number;
      workMs: number;
      checkpointable: boolean;
    }
    const taskInfo = new Map<string, TaskInfo>();
    const jobCores = new Map<string, number>();
    let submittedTasks = 0;
    jobs.forEach((job, k) => {
      step(
        time.until(job.submitAt).then(async () => {
          const created = await api<{ id: string }>(
            'POST',
            '/jobs',
            { name: job.name, taskCount: job.taskCount, command: ['simulate', '--part', '${TASK_INDEX}'], cores: job.cores, memoryMiB: job.memoryMiB, poolId: pools[k % pools.length], checkpointable: job.checkpointable, priority: job.priority },
            submitterToken.token,
          );
          jobCores.set(created.id, job.cores);
          const tasks = await prisma.batchTask.findMany({ where: { jobId: created.id }, select: { id: true } });
          for (const t of tasks) taskInfo.set(`dp-task-${t.id}`, { cores: job.cores, workMs: job.workMs, checkpointable: job.checkpointable });
          submittedTasks += tasks.length;
        }),
        `submission of ${job.name}`,
      );
    });

    // --- the batch guests: a task ends once it has had its CPU time ---------------------------
    // Checkpointed progress carries over; a task that cannot be checkpointed starts over.
    const reported = new Set<RunInterval>();
    const completions: { at: number; cores: number; workMs: number }[] = [];
    every(MIN, async () => {
      const now = time.now();
      const done = new Map<string, number>();
      for (const i of fabric.intervals) {
        if (!i.domain.startsWith('dp-task-')) continue;
        const info = taskInfo.get(i.domain);
        if (info && !info.checkpointable && i.until !== null) continue;
        done.set(i.domain, (done.get(i.domain) ?? 0) + Math.max(0, (i.until ?? now) - i.from));
      }
      const due = fabric.intervals.filter((i) => i.until === null && !reported.has(i) && i.domain.startsWith('dp-task-') && (done.get(i.domain) ?? 0) >= (taskInfo.get(i.domain)?.workMs ?? Infinity));
      await Promise.all(
        due.map(async (i) => {
          reported.add(i);
          const info = taskInfo.get(i.domain);
          const taskId = i.domain.slice('dp-task-'.length);
          completions.push({ at: time.now(), cores: info?.cores ?? 0, workMs: info?.workMs ?? 0 });
          const base = bases[i.pc] as (SimulatedDriver & { guestExit?: (name: string, exitCode: number) => void }) | undefined;
          if (typeof base?.guestExit === 'function') {
            // The guest prints its result and powers off; the agent reports task-finished.
            base.guestExit(i.domain, 0);
            fabric.markStopped(i.domain, i.pc);
            return;
          }
          await drivers[i.pc]?.destroy(i.domain);
          const task = await prisma.batchTask.findUnique({ where: { id: taskId }, select: { generation: true } });
          if (task) await runtime.events.publishTaskFinished({ taskId, generation: task.generation, outcome: 'succeeded' });
        }),
      );
    });

    // --- queued demand, sampled ------------------------------------------------------------------
    const demand: DemandSample[] = [];
    every(5 * MIN, async () => {
      const at = time.now();
      const rows = await prisma.batchTask.groupBy({ by: ['jobId'], where: { state: { in: ['queued', 'checkpointed'] } }, _count: { _all: true } });
      let queuedTasks = 0;
      let queuedCores = 0;
      for (const r of rows) {
        queuedTasks += r._count._all;
        queuedCores += r._count._all * (jobCores.get(r.jobId) ?? 0);
      }
      demand.push({ at, queuedTasks, queuedCores });
    });

    // --- progress ---------------------------------------------------------------------------------
    const progressLine = async (): Promise<string> => {
      const [vmStates, taskStates, queued] = await Promise.all([
        prisma.desktopVm.groupBy({ by: ['state'], _count: { _all: true } }),
        prisma.batchTask.groupBy({ by: ['state'], _count: { _all: true } }),
        backlog(),
      ]);
      const vm = (s: string): number => vmStates.find((x) => x.state === s)?._count._all ?? 0;
      const task = (s: string): number => taskStates.find((x) => x.state === s)?._count._all ?? 0;
      const now = new Date(time.now());
      const day = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'][now.getUTCDay()];
      let asleep = 0;
      for (const i of people) if (power.asleep(i)) asleep += 1;
      return `${day} ${now.toISOString().slice(11, 16)}  desktops running ${vm('RUNNING')}, suspended ${vm('SUSPENDED')}, moving ${vm('SUSPENDING') + vm('RESTORING') + vm('MIGRATING')}  |  PCs asleep ${asleep}  |  batch running ${task('running') + task('placed')}, checkpointed ${task('checkpointed')}, queued ${task('queued')}, done ${task('succeeded')}  |  events queued ${queued}`;
    };
    const progressTimer = options.progressEveryMs > 0 ? setInterval(() => void progressLine().then(io.print, () => undefined), options.progressEveryMs) : undefined;
    cleanups.push(async () => clearInterval(progressTimer));

    const realStart = performance.now();
    await time.until(endMs);
    const realSeconds = (performance.now() - realStart) / 1000;
    clearInterval(progressTimer);
    running = false;
    await Promise.all(loops);
    if (failedSteps > 0) io.print(`  ${failedSteps} scheduled step(s) failed (see above)`);
    io.print(await progressLine());

    const taskStates = await prisma.batchTask.groupBy({ by: ['state'], _count: { _all: true } });
    const report = computeFleetReport({
      startMs,
      endMs,
      pcs: options.pcs,
      pcCores: FLEET_PC.cores,
      night: { startMinute: NIGHT.startMinute, endMinute: NIGHT.endMinute },
      presence: inWindow,
      desktopOf,
      signIns,
      intervals: fabric.intervals,
      sleeps: power.sleeps,
      demand,
      taskCores: (d) => taskInfo.get(d)?.cores ?? 2,
      completions,
      tasks: { submitted: submittedTasks, byState: Object.fromEntries(taskStates.map((s) => [s.state, s._count._all])) },
      latencies,
      realSeconds,
      speed: options.speed,
    });
    const files = options.reportDir ? await writeFleetReport(report, options.reportDir, `deskpool office: ${options.pcs} PCs, ${options.days} day(s)`) : [];
    return { report, files, intervals: fabric.intervals, apiUrl, close: closeAll };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

/** Writes report.json and report.html into `dir` (created if missing); returns their paths. */
export async function writeFleetReport(report: FleetReport, dir: string, title: string): Promise<string[]> {
  await fs.mkdir(dir, { recursive: true });
  const json = path.join(dir, 'report.json');
  const html = path.join(dir, 'report.html');
  await fs.writeFile(json, `${JSON.stringify(report, null, 2)}\n`);
  await fs.writeFile(html, renderFleetHtml(report, title));
  return [json, html];
}
