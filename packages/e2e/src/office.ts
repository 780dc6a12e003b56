// An office under test, all real parts: PostgreSQL (a database of its own), Redis (keys under a
// prefix of its own), the API listening on a local port with its agent gateway, scheduler
// workers (in this process, or as worker processes that a test may kill -9), and agents in this
// process, each driving a libvirt daemon (the machine's own, or a namespaced test host) through
// LibvirtDriver. Presence comes in through each agent's FIFO source, as keyboard events.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import { createConnection } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EV_KEY, EV_SYN, agentConfigSchema, encodeInputEvent, enroll, startAgent, type CredentialFile, type RunningAgent } from '@deskpool/agent';
import { TaskOutputStore, buildApp, createAgentGateway, ensureBootstrapAdminToken, type AgentGateway } from '@deskpool/api';
import type { PrismaClient } from '@deskpool/db';
import { createTestDatabase, type TestDatabase } from '@deskpool/db/testing';
import { LibvirtDriver, type CommandRunner } from '@deskpool/kvm-driver';
import type { HostInventory } from '@deskpool/protocol';
import { ALL_TIMERS, DEFAULT_TIMER_SETTINGS, SchedulerEvents, createSchedulerRuntime, runTimer, type RuntimeTimer, type SchedulerRuntime, type TimerSettings } from '@deskpool/scheduler';
import { Redis } from 'ioredis';
import { OfficeClock } from './clock.js';
import { CounterGuest } from './guest.js';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
export const WORKER_MAIN = path.join(repoRoot, 'packages/scheduler/dist/worker.js');
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://localhost:6379';

/** Pool policy for tests: a night all day long and the shortest idle rule the API accepts. */
export const FAST_POOL_POLICY = {
  timeZone: 'UTC',
  idleThresholdMinutes: 1,
  nightWindowStart: '00:00',
  nightWindowEnd: '00:00',
  batchAllowed: false,
  preStaging: false,
  powerManagement: false,
  storageMode: 'local',
} as const;

export interface OfficeOptions {
  /** Pool policy fields (POST /pools); FAST_POOL_POLICY by default. */
  pool?: Record<string, unknown>;
  /** Seconds without input before an agent reports its PC idle (default 1). */
  agentIdleSeconds?: number;
}

export interface OfficeUser {
  id: string;
  name: string;
}

export interface OfficeHost {
  hostId: string;
  /** Host name as enrolled: what a saved state is sent to over SFTP. */
  name: string;
  owner: OfficeUser;
  driver: LibvirtDriver;
  stateDir: string;
  /** The agent's FIFO presence source. */
  fifo: string;
  /** A key press written to the agent's FIFO; resolves when the bytes are written. */
  tap(): Promise<void>;
  /** `deskpool-agent signin` at this PC. */
  signIn(userName: string): Promise<void>;
  stopAgent(): Promise<void>;
  startAgent(): Promise<void>;
}

export interface AddHostOptions {
  /** Host name to enroll under (unique in the office); the SSH address of a namespaced test host. */
  name: string;
  /** libvirt URI the agent's LibvirtDriver talks to. */
  libvirtUri?: string;
  /** SSH identity for move-state. */
  stateMover?: { privateKeyPath: string; knownHostsPath?: string; username?: string };
  /** The PC's owner (a new user when absent). */
  owner?: OfficeUser;
  /** Where other PCs live-migrate to this one (advertised in its inventory). */
  migration?: { uri: string; dataUri?: string };
  /** How the agent's LibvirtDriver runs virsh (benchmarks time the hypervisor's part with it). */
  driverRunner?: CommandRunner;
}

export interface WorkerProcess {
  proc: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface Office {
  db: TestDatabase;
  prisma: PrismaClient;
  redis: Redis;
  clock: OfficeClock;
  apiUrl: string;
  adminToken: string;
  poolId: string;
  queuePrefix: string;
  channelPrefix: string;
  /** The scheduler event queue the gateway (and tests) publish to. */
  events: SchedulerEvents;
  gateway: AgentGateway;
  app: Awaited<ReturnType<typeof buildApp>>;
  hosts: OfficeHost[];
  /** An authenticated REST call as the admin; throws on a non-2xx answer. */
  api<T = Record<string, unknown>>(method: string, route: string, body?: unknown): Promise<T>;
  createUser(name?: string): Promise<OfficeUser>;
  addHost(options: AddHostOptions): Promise<OfficeHost>;
  /**
   * A counter guest booted on `host` and registered as `owner`'s desktop, RUNNING there (the
   * way an admin adopts an existing domain).
   */
  addDesktop(host: OfficeHost, options?: { tag?: string; owner?: OfficeUser }): Promise<CounterGuest & { vmId: string }>;
  /** An in-process scheduler worker. */
  startWorker(options?: { concurrency?: number; lockDurationMs?: number; stalledIntervalMs?: number }): SchedulerRuntime;
  /** A scheduler worker process (packages/scheduler/dist/worker.js; build it first). */
  spawnWorker(env?: Record<string, string>): WorkerProcess;
  /** Fires a timer now (what its repeatable job does), on the office clock. */
  timer(name: RuntimeTimer): Promise<number>;
  vm(vmId: string): ReturnType<PrismaClient['desktopVm']['findUniqueOrThrow']>;
  /** Polls the desktop's row until `predicate` holds; returns it. */
  waitForVm(vmId: string, what: string, predicate: (vm: Awaited<ReturnType<Office['vm']>>) => boolean, timeoutMs?: number): Promise<Awaited<ReturnType<Office['vm']>>>;
  close(): Promise<void>;
}

/** Every timer fires as a new slot each time a test calls it (ticks are de-duplicated per slot). */
const TEST_TIMER_SETTINGS: TimerSettings = {
  ...DEFAULT_TIMER_SETTINGS,
  intervalsMs: Object.fromEntries(ALL_TIMERS.map((t) => [t, 1])) as Record<RuntimeTimer, number>,
};

export async function waitUntil<T>(what: string, check: () => Promise<T | false | null | undefined> | T | false | null | undefined, timeoutMs = 60_000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

function inventoryOf(hostname: string, migration?: { uri: string; dataUri?: string }): HostInventory {
  const mac = `52:54:00:${randomBytes(3).toString('hex').match(/../g)?.join(':') ?? '00:00:01'}`;
  return {
    hostname,
    cpuCores: 8,
    cpuModel: 'office PC under test',
    memoryMiB: 16384,
    diskGiB: 500,
    gpus: [],
    macAddresses: [mac],
    hypervisor: {
      kvm: false,
      libvirtVersion: null,
      qemuVersion: null,
      liveMigration: true,
      hotplugCpu: true,
      hotplugMemory: true,
      ...(migration ? { migrationUri: migration.uri, ...(migration.dataUri ? { migrationDataUri: migration.dataUri } : {}) } : {}),
    },
    agentVersion: '0.1.0',
    os: 'test',
  };
}

/** Builds the scheduler worker (incrementally) so a spawned worker never runs stale code. */
export function buildWorker(): void {
  execFileSync('npx', ['tsc', '-b', 'packages/scheduler'], { cwd: repoRoot, stdio: 'inherit' });
}

export async function startOffice(options: OfficeOptions = {}): Promise<Office> {
  const cleanups: (() => Promise<unknown>)[] = [];
  const closeAll = async (): Promise<void> => {
    for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
    cleanups.length = 0;
  };
  try {
    const runId = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
    const db = await createTestDatabase();
    cleanups.push(() => db.drop());
    const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    redis.on('error', () => undefined);
    cleanups.push(async () => redis.disconnect());
    const queuePrefix = `dpe-${runId}`;
    const channelPrefix = `${queuePrefix}-agent:`;
    const keyPrefix = `${queuePrefix}-gw:`;
    cleanups.push(() => deleteKeys(`${queuePrefix}*`));
    const clock = new OfficeClock();
    cleanups.push(async () => clock.clearAll());
    const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'dpt-e2e-'));
    cleanups.push(() => fs.rm(tmp, { recursive: true, force: true }));

    const events = new SchedulerEvents({ connection: redis, prefix: queuePrefix });
    cleanups.push(() => events.close());
    // Batch tasks' console output and results are stored, as in the real API (job logs/results).
    const taskOutput = new TaskOutputStore(db.prisma, { clock: clock.api });
    const gateway = createAgentGateway({ prisma: db.prisma, redis, clock: clock.api, channelPrefix, keyPrefix, heartbeatIntervalSeconds: 600, events, taskOutput });
    const app = await buildApp({ logLevel: false }, { prisma: db.prisma, redis, clock: clock.api, scheduler: events, agentRoutes: gateway.plugin });
    await app.listen({ host: '127.0.0.1', port: 0 });
    cleanups.push(() => app.close());
    const address = app.server.address();
    if (typeof address !== 'object' || address === null) throw new Error('the API did not bind a TCP port');
    const apiUrl = `http://127.0.0.1:${address.port}`;
    const adminToken = `dpa_e2e_${randomBytes(24).toString('hex')}`;
    await ensureBootstrapAdminToken(db.prisma, adminToken);

    const api = async <T = Record<string, unknown>>(method: string, route: string, body?: unknown): Promise<T> => {
      const res = await fetch(`${apiUrl}/api/v1${route}`, {
        method,
        headers: { authorization: `Bearer ${adminToken}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`${method} ${route} answered ${res.status}: ${text.slice(0, 500)}`);
      return (text ? JSON.parse(text) : {}) as T;
    };

    const pool = await api<{ id: string }>('POST', '/pools', { name: `office-${runId}`, ...FAST_POOL_POLICY, ...options.pool });
    const timerDeps = { prisma: db.prisma, redis, events, clock, channelPrefix, settings: TEST_TIMER_SETTINGS };
    const hosts: OfficeHost[] = [];
    const guests: CounterGuest[] = [];
    cleanups.push(async () => {
      for (const g of guests) await g.remove();
    });
    const workers: SchedulerRuntime[] = [];
    const processes: WorkerProcess[] = [];
    // Agents and workers stop before the API and the database (cleanups run in reverse).
    cleanups.push(async () => {
      await Promise.all(processes.map((p) => p.kill('SIGKILL')));
      await Promise.all(workers.map((w) => w.close().catch(() => w.kill())));
      await Promise.all(hosts.map((h) => h.stopAgent()));
    });

    const createUser = async (name = `u${randomBytes(3).toString('hex')}`): Promise<OfficeUser> => {
      const user = await api<{ id: string }>('POST', '/users', { name, role: 'user', poolId: pool.id });
      return { id: user.id, name };
    };

    const office: Office = {
      db,
      prisma: db.prisma,
      redis,
      clock,
      apiUrl,
      adminToken,
      poolId: pool.id,
      queuePrefix,
      channelPrefix,
      events,
      gateway,
      app,
      hosts,
      api,
      createUser,

      async addHost(o) {
        const owner = o.owner ?? (await createUser());
        const stateDir = path.join(tmp, o.name.replace(/[^A-Za-z0-9.-]/g, '_'));
        await fs.mkdir(stateDir, { recursive: true });
        const token = await api<{ token: string }>('POST', '/enrollment-tokens', { poolId: pool.id, note: `PC ${o.name}` });
        const inventory = inventoryOf(o.name, o.migration);
        const enrolled = await enroll({ serverUrl: apiUrl, token: token.token, stateDir, inventory });
        const hostId = enrolled.response.hostId;
        await api('PATCH', `/hosts/${hostId}`, { ownerUserId: owner.id });
        await api('PATCH', `/users/${owner.id}`, { homeHostId: hostId });
        const credential = JSON.parse(await fs.readFile(path.join(stateDir, 'credential.json'), 'utf8')) as CredentialFile;
        const fifo = path.join(stateDir, 'input.fifo');
        execFileSync('mkfifo', [fifo]);
        const libvirtUri = o.libvirtUri ?? 'qemu:///system';
        const driver = new LibvirtDriver({ uri: libvirtUri, ...(o.driverRunner ? { runner: o.driverRunner } : {}) });
        const config = agentConfigSchema.parse({
          serverUrl: apiUrl,
          stateDir,
          idleThresholdSeconds: options.agentIdleSeconds ?? 1,
          presenceSources: [{ kind: 'fifo', path: fifo }],
          driver: { kind: 'libvirt', uri: libvirtUri },
          heartbeatIntervalSeconds: 600,
          domainPollSeconds: 3600,
          inventoryIntervalSeconds: 86_400,
          reconnectInitialMs: 100,
          reconnectMaxMs: 1000,
          ...(o.stateMover ? { stateMover: { username: 'root', ...o.stateMover } } : {}),
        });
        let agent: RunningAgent | undefined;
        const host: OfficeHost = {
          hostId,
          name: o.name,
          owner,
          driver,
          stateDir,
          fifo,
          async tap() {
            const timeUs = BigInt(Date.now()) * 1000n;
            const bytes = Buffer.concat([encodeInputEvent({ timeUs, type: EV_KEY, code: 57, value: 1 }), encodeInputEvent({ timeUs, type: EV_SYN, code: 0, value: 0 })]);
            // O_RDWR: opening never blocks, and the agent holds the read end open.
            const handle = await fs.open(fifo, constants.O_RDWR);
            try {
              await handle.write(bytes);
            } finally {
              await handle.close();
            }
          },
          async signIn(userName) {
            await signInAt(path.join(stateDir, 'agent.sock'), userName);
          },
          async stopAgent() {
            const a = agent;
            agent = undefined;
            await a?.stop().catch(() => undefined);
          },
          async startAgent() {
            if (agent) return;
            agent = await startAgent({ config, credential, driver, clock, libvirtUri, inventory: async () => inventory, log: () => undefined });
          },
        };
        await host.startAgent();
        await waitUntil(`the agent of ${o.name} is connected`, () => gateway.registry.isConnectedHere(hostId), 30_000);
        hosts.push(host);
        return host;
      },

      async addDesktop(host, o = {}) {
        const owner = o.owner ?? host.owner;
        const guest = await CounterGuest.boot(host.driver, tmp, o.tag ?? 'desk');
        guests.push(guest);
        const vm = await api<{ id: string }>('POST', '/vms', { name: guest.domain, ownerUserId: owner.id, vcpus: 1, memoryMiB: guest.memoryMiB, diskGiB: 1, diskLocation: 'none' });
        // Adopted as it runs: what an admin does for an existing domain.
        await db.prisma.desktopVm.update({ where: { id: vm.id }, data: { state: 'RUNNING', currentHostId: host.hostId, fencingGeneration: 1, stateChangedAt: new Date(clock.now()) } });
        return Object.assign(guest, { vmId: vm.id });
      },

      startWorker(o = {}) {
        const worker = createSchedulerRuntime({
          prisma: db.prisma,
          redis,
          connection: { url: REDIS_URL, maxRetriesPerRequest: null },
          queuePrefix,
          channelPrefix,
          clock,
          concurrency: o.concurrency ?? 2,
          scheduleTimers: false,
          timers: TEST_TIMER_SETTINGS,
          ...(o.lockDurationMs !== undefined ? { lockDurationMs: o.lockDurationMs } : {}),
          ...(o.stalledIntervalMs !== undefined ? { stalledIntervalMs: o.stalledIntervalMs } : {}),
        });
        workers.push(worker);
        return worker;
      },

      spawnWorker(env = {}) {
        const proc = spawn(process.execPath, [WORKER_MAIN], {
          env: {
            ...process.env,
            DATABASE_URL: db.url,
            REDIS_URL,
            LOG_LEVEL: 'warn',
            DESKPOOL_QUEUE_PREFIX: queuePrefix,
            DESKPOOL_AGENT_CHANNEL_PREFIX: channelPrefix,
            DESKPOOL_SCHEDULE_TIMERS: 'false',
            DESKPOOL_WORKER_CONCURRENCY: '2',
            ...env,
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        proc.stdout?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
        proc.stderr?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
        const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
        const handle: WorkerProcess = {
          proc,
          output: () => out,
          exited,
          async kill(signal = 'SIGTERM') {
            if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
            return exited;
          },
        };
        processes.push(handle);
        return handle;
      },

      async timer(name) {
        return (await runTimer(name, timerDeps)).count;
      },

      vm: (vmId) => db.prisma.desktopVm.findUniqueOrThrow({ where: { id: vmId } }),

      async waitForVm(vmId, what, predicate, timeoutMs = 90_000) {
        let last: Awaited<ReturnType<Office['vm']>> | undefined;
        try {
          return await waitUntil(what, async () => {
            last = await office.vm(vmId);
            return predicate(last) ? last : null;
          }, timeoutMs, 50);
        } catch (err) {
          const ops = await db.prisma.operation.findMany({ where: { vmId }, orderBy: { createdAt: 'asc' }, select: { kind: true, status: true, error: true, hostId: true } });
          throw new Error(`${(err as Error).message}; desktop is ${last?.state} on ${last?.currentHostId}; operations: ${JSON.stringify(ops)}`, { cause: err });
        }
      },

      close: closeAll,
    };
    return office;
  } catch (err) {
    await closeAll();
    throw err;
  }
}

async function deleteKeys(pattern: string): Promise<void> {
  const cleaner = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  cleaner.on('error', () => undefined);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await cleaner.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await cleaner.del(...keys);
    } while (cursor !== '0');
  } finally {
    cleaner.disconnect();
  }
}

/** What `deskpool-agent signin` does: one JSON line on the agent's local socket. */
function signInAt(socketPath: string, user: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const conn = createConnection(socketPath, () => conn.write(`${JSON.stringify({ type: 'signin', user })}\n`));
    let reply = '';
    conn.setEncoding('utf8');
    conn.on('data', (d: string) => (reply += d));
    conn.on('end', () => (reply.includes('"ok":true') ? resolve() : reject(new Error(`sign-in refused: ${reply}`))));
    conn.on('error', reject);
  });
}
