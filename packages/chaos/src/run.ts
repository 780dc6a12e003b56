// One chaos run: the real control plane (two API processes, two scheduler workers) on a
// PostgreSQL cluster and a Redis server of its own, agent fleets in processes of their own,
// the simulated PCs' hypervisors in an office process; a seeded night of faults; the verdict.
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { enroll } from '@deskpool/agent';
import { SchedulerEvents } from '@deskpool/scheduler';
import pg from 'pg';
import { check, type AuditEvidence, type Evidence, type OperationEvidence, type Violation } from './check.js';
import { simulatedInventory } from './inventory.js';
import { ask, ready } from './ipc.js';
import type { FleetConfig, OfficeConfig, OfficeReply } from './messages.js';
import type { ChaosOptions } from './options.js';
import { activityOf, buildPlan, HEARTBEAT_TIMEOUT_MS, type ChaosPlan, type Fault, type FaultKind } from './plan.js';
import { ManagedProcess } from './proc.js';
import { freePort, PgCluster, RedisServer, waitFor } from './services.js';

const PC = { cpus: 8, memoryMiB: 16384 } as const;
const DESKTOP = { vcpus: 2, memoryMiB: 2048 } as const;
const BATCH = { cores: 2, memoryMiB: 2048 } as const;
// Spawned processes always run built code (dist/), also when this module runs from src/ in a test.
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const distOf = (workspace: string, file: string): string => path.join(REPO, workspace, 'dist', file);

export interface FaultRecord {
  fault: Fault;
  /** ms after the start when it was injected. */
  injectedAt: number;
  error?: string;
}

export interface ChaosResult {
  seed: number;
  options: ChaosOptions;
  plan: ChaosPlan;
  faults: FaultRecord[];
  violations: Violation[];
  stats: {
    pcs: number;
    desktopsSuspended: number;
    taps: number;
    tasksSubmitted: number;
    taskStates: Record<string, number>;
    tasksReportedDone: number;
    processStarts: Record<string, number>;
    runSeconds: number;
  };
  workDir: string;
}

export interface ChaosIo {
  print(line: string): void;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));

function restClient(baseUrl: () => string, token: string) {
  return async function call<T = Record<string, unknown>>(method: string, route: string, body?: unknown, asToken = token): Promise<T> {
    let lastError: unknown;
    for (let attempt = 0; attempt < 20; attempt += 1) {
      try {
        const res = await fetch(`${baseUrl()}/api/v1${route}`, {
          method,
          headers: { authorization: `Bearer ${asToken}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
          ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        });
        const text = await res.text();
        if (res.status >= 500 || res.status === 429) throw new Error(`${method} ${route} answered ${res.status}: ${text.slice(0, 300)}`);
        if (!res.ok) throw Object.assign(new Error(`${method} ${route} answered ${res.status}: ${text.slice(0, 500)}`), { final: true });
        return (text ? JSON.parse(text) : {}) as T;
      } catch (err) {
        if ((err as { final?: boolean }).final) throw err;
        lastError = err;
        await sleep(500);
      }
    }
    throw lastError;
  };
}

/**
 * On a loaded machine an enrollment can time out after the API took the token: the retry
 * enrolls with a fresh token (a host left behind never connects and is never used).
 */
async function enrollWithRetries<T>(attempt: () => Promise<T>): Promise<T> {
  for (let i = 1; ; i += 1) {
    try {
      return await attempt();
    } catch (err) {
      if (i >= 5) throw err;
      await sleep(1000 * i);
    }
  }
}

const hhmm = (ms: number): string => new Date(ms).toISOString().slice(11, 16);

export async function runChaos(options: ChaosOptions, io: ChaosIo): Promise<ChaosResult> {
  const plan = buildPlan(options);
  const root = options.workDir ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'dpchaos-')));
  await fs.mkdir(root, { recursive: true });
  await fs.chmod(root, 0o755);
  const logs = path.join(root, 'logs');
  await fs.mkdir(logs, { recursive: true });
  const cleanups: (() => Promise<void>)[] = [];
  const startedReal = Date.now();
  io.print(`chaos: seed ${options.seed}, ${options.faults} faults, ${options.pcs} PCs in ${options.fleets} fleets${options.testOnlyDisableFencing ? ', FENCING DISABLED (test-only broken build)' : ''}; work dir ${root}`);

  try {
    // --- services of our own ------------------------------------------------------------
    const pgCluster = await PgCluster.create(root);
    cleanups.push(() => pgCluster.stop('fast'));
    const redis = await RedisServer.create(root);
    cleanups.push(() => redis.kill());
    io.print(`chaos: PostgreSQL on port ${pgCluster.port}, Redis on port ${redis.port}`);

    // --- control plane ------------------------------------------------------------------
    const adminToken = `dpa_chaos_${randomBytes(24).toString('hex')}`;
    const apiPorts = [await freePort(), await freePort()];
    const apis = apiPorts.map(
      (port, i) =>
        new ManagedProcess({
          name: `api${i}`,
          script: distOf('apps/api', 'main.js'),
          env: { ...process.env, DATABASE_URL: pgCluster.url, REDIS_URL: redis.url, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', DESKPOOL_BOOTSTRAP_ADMIN_TOKEN: adminToken,
            NODE_ENV: 'production',
            // Every simulated PC connects from 127.0.0.1: per-address limits meant for one PC
            // (or one guesser) would throttle the whole office.
            RATE_LIMIT_ENROLL_MAX: '1000000',
            RATE_LIMIT_AGENT_CONNECT_MAX: '1000000',
          },
          logFile: path.join(logs, `api${i}.log`),
        }),
    );
    const apiHealthy = (i: number) => async () => (await fetch(`http://127.0.0.1:${apiPorts[i]}/healthz`)).ok;
    for (const [i, api] of apis.entries()) {
      api.start();
      cleanups.push(() => api.stop());
      await waitFor(`API ${i}`, apiHealthy(i), 180_000);
    }
    const workerEnv = {
      ...process.env,
      DATABASE_URL: pgCluster.url,
      REDIS_URL: redis.url,
      LOG_LEVEL: 'warn',
      DESKPOOL_WORKER_CONCURRENCY: '4',
      DESKPOOL_HEARTBEAT_TIMEOUT_MS: String(HEARTBEAT_TIMEOUT_MS),
      DESKPOOL_REDISPATCH_AFTER_MS: '10000',
      DESKPOOL_TIMER_IDLE_CHECK_MS: '5000',
      DESKPOOL_TIMER_NIGHT_START_MS: '30000',
      DESKPOOL_TIMER_PRE_STAGE_MS: '30000',
      DESKPOOL_TIMER_POWER_MS: '60000',
      DESKPOOL_TIMER_MORNING_DRAIN_MS: '10000',
      DESKPOOL_TIMER_PLACEMENT_MS: '3000',
      DESKPOOL_TIMER_HEARTBEAT_CHECK_MS: '5000',
      DESKPOOL_TIMER_REDISPATCH_MS: '5000',
      DESKPOOL_TIMER_RESULT_SWEEP_MS: '10000',
      // The broken build: a lost host counts as fenced at once (the worker honours it only under NODE_ENV=test).
      ...(options.testOnlyDisableFencing ? { NODE_ENV: 'test', DESKPOOL_UNSAFE_DISABLE_FENCING: '1' } : {}),
    };
    const workers = [0, 1].map((i) => new ManagedProcess({ name: `worker${i}`, script: distOf('packages/scheduler', 'worker.js'), env: workerEnv, logFile: path.join(logs, `worker${i}.log`) }));
    for (const w of workers) {
      w.start();
      cleanups.push(() => w.stop());
    }

    // --- the office, set up through the REST API and real enrollment ---------------------
    let apiTurn = 0;
    const anyApi = (): string => `http://127.0.0.1:${apiPorts[apiTurn++ % 2]}`;
    const api = restClient(anyApi, adminToken);
    const now = Date.now();
    // The night window is around now (UTC), office hours are not: it is night for the pool.
    const pool = await api<{ id: string }>('POST', '/pools', {
      name: 'chaos-office',
      timeZone: 'UTC',
      idleThresholdMinutes: 1,
      nightWindowStart: hhmm(now - 3 * 3600_000),
      nightWindowEnd: hhmm(now + 6 * 3600_000),
      officeHoursStart: hhmm(now + 8 * 3600_000),
      officeHoursEnd: hhmm(now + 9 * 3600_000),
      storageMode: 'shared',
      preStaging: false,
      powerManagement: false,
      checkpointGraceSeconds: 5,
    });
    const stateRoot = path.join(root, 'agents');
    const desktops: { pc: number; vmId: string; domain: string; hostname: string }[] = [];
    const hostname = (pc: number): string => `chaos-pc-${String(pc).padStart(4, '0')}`;
    for (let i = 0; i < plan.people.length; i += 10) {
      await Promise.all(
        plan.people.slice(i, i + 10).map(async (p) => {
          const user = await api<{ id: string }>('POST', '/users', { name: p.name, role: 'user', poolId: pool.id });
          const enrolled = await enrollWithRetries(async () => {
            const token = await api<{ token: string }>('POST', '/enrollment-tokens', { poolId: pool.id, note: `PC of ${p.name}` });
            return enroll({ serverUrl: anyApi(), token: token.token, stateDir: path.join(stateRoot, `pc${p.pc}`), inventory: simulatedInventory(p.pc, hostname(p.pc), PC.cpus, PC.memoryMiB) });
          });
          await api('PATCH', `/hosts/${enrolled.response.hostId}`, { ownerUserId: user.id });
          await api('PATCH', `/users/${user.id}`, { homeHostId: enrolled.response.hostId });
          const domain = `desk-${p.name}`;
          const vm = await api<{ id: string }>('POST', '/vms', { name: domain, ownerUserId: user.id, vcpus: DESKTOP.vcpus, memoryMiB: DESKTOP.memoryMiB, diskGiB: 20, diskLocation: 'shared:/desktops' });
          desktops[p.pc] = { pc: p.pc, vmId: vm.id, domain, hostname: hostname(p.pc) };
        }),
      );
    }
    const submitter = await api<{ id: string }>('POST', '/users', { name: 'chaos-batch', role: 'submitter', poolId: pool.id });
    const submitterToken = await api<{ token: string }>('POST', '/api-tokens', { name: 'chaos-batch', role: 'submitter', userId: submitter.id });
    io.print(`chaos: ${options.pcs} PCs enrolled (${Math.round((Date.now() - startedReal) / 1000)} s)`);

    // --- hypervisors and agents ---------------------------------------------------------
    const officeSocket = path.join(root, 'office.sock');
    const officeConfig: OfficeConfig = {
      socketPath: officeSocket,
      workDir: root,
      pcs: desktops.map((d) => ({ pc: d.pc, hostname: d.hostname })),
      desktops: desktops.map((d) => ({ name: d.domain, pc: d.pc, vcpus: DESKTOP.vcpus, memoryMiB: DESKTOP.memoryMiB })),
      cpus: PC.cpus,
      memoryMiB: PC.memoryMiB,
      taskSeconds: options.taskSeconds,
    };
    await fs.writeFile(path.join(root, 'office.json'), JSON.stringify(officeConfig));
    const office = new ManagedProcess({ name: 'office', script: distOf('packages/chaos', 'office-main.js'), args: [path.join(root, 'office.json')], env: process.env, logFile: path.join(logs, 'office.log'), ipc: true });
    const officeChild = office.start();
    cleanups.push(() => office.stop());
    await ready(officeChild, 'the office process');
    const askOffice = <T extends OfficeReply>(msg: Record<string, unknown>): Promise<T> => {
      if (!office.child) throw new Error('office not running');
      return ask<T>(office.child, 'the office process', msg, 60_000);
    };

    // Time for the fleets to start their agents before the night's first moment.
    const startMs = Date.now() + 5000 + 40 * options.pcs;
    // People stay once they came in, also when late faults make the run longer than planned.
    const endMs = startMs + plan.endAt + 15 * 60_000;
    const partitioned = new Set<number>();
    const skews = new Map<number, number>();
    const fleetOf = (pc: number): number => pc % options.fleets;
    const fleetConfigPath = (f: number): string => path.join(root, `fleet${f}.json`);
    const writeFleetConfig = async (f: number): Promise<void> => {
      const config: FleetConfig = {
        fleet: f,
        officeSocket,
        apis: apiPorts.map((p) => `127.0.0.1:${p}`),
        agents: plan.people.filter((p) => fleetOf(p.pc) === f).map((p) => ({ pc: p.pc, hostname: hostname(p.pc), stateDir: path.join(stateRoot, `pc${p.pc}`), ...activityOf(p, startMs, endMs) })),
        firstStart: (fleets[f]?.starts ?? 0) === 0,
        partitioned: [...partitioned].filter((pc) => fleetOf(pc) === f),
        skewMs: Object.fromEntries([...skews].filter(([pc]) => fleetOf(pc) === f)),
        cpus: PC.cpus,
        memoryMiB: PC.memoryMiB,
        testOnlyDisableFencing: options.testOnlyDisableFencing,
      };
      await fs.writeFile(fleetConfigPath(f), JSON.stringify(config));
    };
    const fleets = Array.from({ length: options.fleets }, (_, f) => new ManagedProcess({ name: `fleet${f}`, script: distOf('packages/chaos', 'fleet-main.js'), args: [fleetConfigPath(f)], env: process.env, logFile: path.join(logs, `fleet${f}.log`), ipc: true }));
    const startFleet = async (f: number): Promise<void> => {
      await writeFleetConfig(f);
      const fleet = fleets[f];
      if (!fleet) return;
      await ready(fleet.start(), `agent fleet ${f}`);
    };
    await Promise.all(fleets.map((_, f) => startFleet(f)));
    cleanups.push(async () => void (await Promise.all(fleets.map((f) => f.stop()))));
    const toFleet = async (pc: number | null, msg: Record<string, unknown>): Promise<void> => {
      const targets = pc === null ? fleets : [fleets[fleetOf(pc)]];
      await Promise.all(targets.map(async (f) => (f?.child && f.running ? ask(f.child, f.spec.name, msg, 10_000) : undefined)));
    };
    io.print(`chaos: ${options.pcs} agents running; the night starts`);
    await sleep(startMs - Date.now());
    const rel = (): number => Date.now() - startMs;

    // --- the night's batch work -----------------------------------------------------------
    const taskCount = options.pcs * options.tasksPerPc;
    let tasksSubmitted = 0;
    if (taskCount > 0) {
      await api('POST', '/jobs', { name: 'chaos-batch', taskCount, command: ['work', '${TASK_INDEX}'], cores: BATCH.cores, memoryMiB: BATCH.memoryMiB, poolId: pool.id, checkpointable: true, priority: 100 }, submitterToken.token);
      tasksSubmitted = taskCount;
    }

    // --- batch guests finish once they had their CPU time -------------------------------
    const db = new pg.Pool({ connectionString: pgCluster.url, max: 2 });
    db.on('error', () => undefined);
    cleanups.push(() => db.end());
    // Connection options, not an instance: BullMQ owns its connections (and their reconnects).
    const schedulerEvents = new SchedulerEvents({ connection: { url: redis.url, maxRetriesPerRequest: null, enableOfflineQueue: false } });
    schedulerEvents.queue.on('error', () => undefined);
    cleanups.push(() => schedulerEvents.close().catch(() => undefined));
    const reportedDone = new Set<string>();
    let looping = true;
    // A batch guest that printed its result and powered off has finished its work. The agent
    // may report that itself (task-finished); the harness tells the scheduler too, as the
    // simulator does, so a run does not depend on it. Same event id: applied once.
    const completionLoop = (async () => {
      while (looping) {
        await sleep(2000);
        try {
          const record = await askOffice<Extract<OfficeReply, { type: 'record' }>>({ type: 'record', paths: [] });
          for (const domain of record.guestsDone) {
            const taskId = domain.slice('dp-task-'.length);
            if (reportedDone.has(taskId)) continue;
            const row = await db.query<{ generation: number }>('SELECT generation FROM batch_tasks WHERE id = $1', [taskId]);
            const generation = row.rows[0]?.generation;
            if (generation === undefined) continue;
            await schedulerEvents.publishTaskFinished({ taskId, generation, outcome: 'succeeded' });
            reportedDone.add(taskId);
          }
        } catch {
          // A fault is in progress (Redis or PostgreSQL down); the next round tries again.
        }
      }
    })();
    cleanups.push(async () => {
      looping = false;
      await completionLoop;
    });

    // --- the faults -------------------------------------------------------------------------
    const records: FaultRecord[] = [];
    const background: Promise<void>[] = [];
    const restartAfter = async (ms: number, what: string, start: () => Promise<void>): Promise<void> => {
      await sleep(ms);
      await start().catch((err: unknown) => io.print(`  ! could not restart ${what}: ${(err as Error).message}`));
    };
    /**
     * The first PC from `planned` on (in turn) that runs a batch guest and is not already cut
     * off, waiting up to a minute for one; `planned` itself when none does.
     */
    const busyPcFrom = async (planned: number): Promise<number> => {
      const deadline = Date.now() + 60_000;
      for (;;) {
        const record = await askOffice<Extract<OfficeReply, { type: 'record' }>>({ type: 'record', paths: [] }).catch(() => null);
        const busy = new Set((record?.domains ?? []).filter((d) => d.domains.some((x) => x.name.startsWith('dp-task-') && x.state === 'running')).map((d) => d.pc));
        for (let i = 0; i < options.pcs; i += 1) {
          const pc = (planned + i) % options.pcs;
          if (busy.has(pc) && !partitioned.has(pc)) return pc;
        }
        if (Date.now() >= deadline) return planned;
        await sleep(2000);
      }
    };
    const inject = async (f: Fault): Promise<void> => {
      switch (f.kind as FaultKind) {
        case 'kill-api': {
          const p = apis[f.target];
          if (!p) return;
          await p.kill();
          await restartAfter(f.durationMs, p.spec.name, async () => {
            p.start();
            await waitFor(p.spec.name, apiHealthy(f.target), 180_000);
          });
          return;
        }
        case 'kill-worker': {
          const p = workers[f.target];
          if (!p) return;
          await p.kill();
          await restartAfter(f.durationMs, p.spec.name, async () => void p.start());
          return;
        }
        case 'redis-restart-persistent':
        case 'redis-restart-empty':
          await redis.kill();
          await restartAfter(f.durationMs, 'redis', () => redis.start(f.kind === 'redis-restart-persistent'));
          return;
        case 'postgres-restart':
          await pgCluster.stop('immediate');
          await restartAfter(f.durationMs, 'postgres', () => pgCluster.start());
          return;
        case 'kill-fleet': {
          const p = fleets[f.target];
          if (!p) return;
          await p.kill();
          await restartAfter(f.durationMs, p.spec.name, () => startFleet(f.target));
          return;
        }
        case 'cut-connections':
          await toFleet(f.target < 0 ? null : f.target, { type: 'cut', pc: f.target < 0 ? null : f.target });
          return;
        case 'partition-host': {
          // Cut off a PC while it runs batch work, or the partition proves nothing about
          // fencing: the control plane must not start that work elsewhere meanwhile.
          const pc = await busyPcFrom(f.target);
          if (pc !== f.target) io.print(`           (PC ${f.target} runs no batch guest: partitioning PC ${pc}, which does)`);
          partitioned.add(pc);
          await toFleet(pc, { type: 'partition', pc, on: true });
          background.push(
            sleep(f.durationMs).then(async () => {
              partitioned.delete(pc);
              await toFleet(pc, { type: 'partition', pc, on: false }).catch(() => undefined);
            }),
          );
          return;
        }
        case 'clock-skew':
          skews.set(f.target, f.amount);
          await toFleet(f.target, { type: 'skew', pc: f.target, ms: f.amount });
          background.push(
            sleep(f.durationMs).then(async () => {
              skews.delete(f.target);
              await toFleet(f.target, { type: 'skew', pc: f.target, ms: 0 }).catch(() => undefined);
            }),
          );
          return;
        case 'slow-disk':
          await askOffice({ type: 'slow-disk', pc: f.target, delayMs: f.amount, durationMs: f.durationMs });
          return;
      }
    };
    for (const f of plan.faults) {
      await sleep(f.at - rel());
      const record: FaultRecord = { fault: f, injectedAt: rel() };
      records.push(record);
      io.print(`  t+${(record.injectedAt / 1000).toFixed(0).padStart(4)} s  ${describeFault(f)}`);
      await inject(f).catch((err: unknown) => (record.error = (err as Error).message));
    }
    await Promise.all(background);
    // On a loaded machine restarts take longer than planned and the faults end later: the SLO
    // counts from when they really ended, and the run lasts until every tap has had it.
    const faultsEndAt = Math.max(plan.faultsEndAt, rel());
    const endAt = Math.max(plan.endAt, faultsEndAt + plan.sloMs + 5000);
    io.print(`chaos: faults over at t+${Math.round(faultsEndAt / 1000)} s; waiting for the mornings until t+${Math.round(endAt / 1000)} s`);
    await sleep(endAt - rel());
    looping = false;
    await completionLoop;

    // --- the evidence -------------------------------------------------------------------------
    const record = await askOffice<Extract<OfficeReply, { type: 'record' }>>({ type: 'record', paths: desktops.map((d) => `/var/lib/deskpool/saved/${d.domain}.save`) });
    const [vmRows, taskRows, opRows, auditRows] = await Promise.all([
      db.query<{ id: string; name: string; state: string }>('SELECT id, name, state FROM desktop_vms'),
      db.query<{ id: string; state: string; exit_status: number | null; output: string | null }>('SELECT id, state, exit_status, output FROM batch_tasks'),
      db.query<{ kind: string; vm_id: string | null; status: string; created_at: Date; finished_at: Date | null; error: string | null; task_id: string | null }>('SELECT kind, vm_id, status, created_at, finished_at, error, task_id FROM operations'),
      db.query<{ entity_id: string; at: Date; after: { state?: string } | null }>("SELECT entity_id, at, after FROM audit_events WHERE entity_type = 'vm' ORDER BY id"),
    ]);
    const guestReasons = await db.query<{ entity_id: string; after: { reason?: string; exitCode?: number | null } | null }>("SELECT entity_id, after FROM audit_events WHERE action = 'task.guest-finished' ORDER BY id");
    const vmByName = new Map(vmRows.rows.map((r) => [r.name, r]));
    const liveOrSaved = new Set<string>();
    for (const pcDomains of record.domains) for (const d of pcDomains.domains) if (d.state === 'running' || d.state === 'paused' || d.state === 'saved') liveOrSaved.add(d.name);
    const savedFiles = new Set<string>();
    for (const f of record.files) for (const p of f.paths) savedFiles.add(path.basename(p, '.save'));
    const taskFailure = new Map<string, string>();
    for (const op of opRows.rows) if (op.task_id && op.error) taskFailure.set(op.task_id, op.error);
    for (const g of guestReasons.rows) {
      const why = g.after?.reason ?? (g.after?.exitCode != null ? `exit ${g.after.exitCode}` : null);
      if (why) taskFailure.set(g.entity_id, `guest: ${why}`);
    }
    const evidence: Evidence = {
      intervals: record.intervals,
      desktops: desktops.map((d) => {
        const person = plan.people[d.pc];
        return { vmId: d.vmId, domain: d.domain, homePc: d.pc, tapAt: person?.tapsAt != null ? startMs + person.tapsAt : null, dbState: vmByName.get(d.domain)?.state ?? 'missing' };
      }),
      tasks: taskRows.rows.map((t) => ({ id: t.id, state: t.state, failureReason: t.exit_status !== null ? `exit ${t.exit_status}` : (t.output ?? taskFailure.get(t.id) ?? null) })),
      tasksSubmitted,
      tasksReportedDone: new Set(record.guestsDone.map((d) => d.slice('dp-task-'.length))),
      operations: opRows.rows.map((o): OperationEvidence => ({ kind: o.kind, vmId: o.vm_id, status: o.status, createdAt: o.created_at.getTime(), finishedAt: o.finished_at?.getTime() ?? null })),
      audit: auditRows.rows.map((a): AuditEvidence => ({ entityId: a.entity_id, at: a.at.getTime(), afterState: a.after?.state ?? null })),
      savedStateFiles: savedFiles,
      liveOrSavedDomains: liveOrSaved,
      faultsEndAt: startMs + faultsEndAt,
      sloMs: plan.sloMs,
    };
    const violations = check(evidence);
    const taskStates: Record<string, number> = {};
    for (const t of taskRows.rows) taskStates[t.state] = (taskStates[t.state] ?? 0) + 1;
    const suspended = new Set(opRows.rows.filter((o) => o.kind === 'suspend' && o.status === 'succeeded').map((o) => o.vm_id));
    const processStarts: Record<string, number> = {};
    for (const p of [...apis, ...workers, ...fleets]) processStarts[p.spec.name] = p.starts;
    return {
      seed: options.seed,
      options,
      plan,
      faults: records,
      violations,
      stats: {
        pcs: options.pcs,
        desktopsSuspended: suspended.size,
        taps: plan.people.filter((p) => p.tapsAt !== null).length,
        tasksSubmitted,
        taskStates,
        tasksReportedDone: record.guestsDone.length,
        processStarts,
        runSeconds: Math.round((Date.now() - startedReal) / 1000),
      },
      workDir: root,
    };
  } finally {
    for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
    if (!options.keep && !options.workDir) await fs.rm(root, { recursive: true, force: true }).catch(() => undefined);
  }
}

export function describeFault(f: Fault): string {
  const s = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
  switch (f.kind) {
    case 'kill-api':
      return `kill -9 API ${f.target}, back after ${s(f.durationMs)}`;
    case 'kill-worker':
      return `kill -9 scheduler worker ${f.target}, back after ${s(f.durationMs)}`;
    case 'kill-fleet':
      return `kill -9 agent fleet ${f.target} (its agents mid-command), back after ${s(f.durationMs)}`;
    case 'redis-restart-persistent':
      return `kill -9 Redis, restart with its AOF after ${s(f.durationMs)}`;
    case 'redis-restart-empty':
      return `kill -9 Redis, restart EMPTY (no persistence) after ${s(f.durationMs)}`;
    case 'postgres-restart':
      return `PostgreSQL immediate stop, start after ${s(f.durationMs)}`;
    case 'cut-connections':
      return f.target < 0 ? 'cut every agent connection' : `cut PC ${f.target}'s connection`;
    case 'partition-host':
      return `partition PC ${f.target} for ${s(f.durationMs)}`;
    case 'clock-skew':
      return `skew PC ${f.target}'s clock by ${s(f.amount)} for ${s(f.durationMs)}`;
    case 'slow-disk':
      return `slow disk on PC ${f.target}: +${s(f.amount)} per save/restore/start for ${s(f.durationMs)}`;
  }
}
