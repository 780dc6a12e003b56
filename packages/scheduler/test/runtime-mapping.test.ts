import { commandFrameSchema } from '@deskpool/protocol';
import { describe, expect, it } from 'vitest';
import type { Command } from '../src/core/types.js';
import { agentCommandFor, commandFrameFor, wireKey } from '../src/runtime/commands.js';
import {
  columnsForUpdate,
  hostFromRow,
  jobFromRow,
  labelsToRecord,
  operationFromRow,
  poolFromRow,
  taskFromRow,
  taskStateToCore,
  taskStateToRow,
  UnmappedFieldError,
  UnreadableRowError,
  userFromRow,
  vmFromRow,
  type HostRecord,
  type PoolRecord,
  type VmRecord,
} from '../src/runtime/mapping.js';

const at = (iso: string): Date => new Date(iso);

const poolRow: PoolRecord = {
  id: 'p1',
  timeZone: 'Europe/Berlin',
  officeDays: [1, 2, 3, 4, 5, 7],
  officeHoursStart: '08:00',
  officeHoursEnd: '17:30',
  idleThresholdMinutes: 20,
  nightWindowStart: '20:00',
  nightWindowEnd: '06:00',
  batchAllowed: true,
  maxBatchPercentOwnerPresent: 25,
  preStaging: false,
  powerManagement: true,
  storageMode: 'shared',
  checkpointGraceSeconds: 45,
  preStageBudget: { localDate: '2026-11-26', usedCoreMs: 1200 },
};

const hostRow: HostRecord = {
  id: 'h1',
  poolId: 'p1',
  cores: 8,
  memoryMiB: 16384,
  diskGiB: 500,
  gpu: 'rtx',
  labels: ['ssd', 'rack=3'],
  onlineState: 'online',
  needsReconcile: false,
  presenceState: 'idle',
  presenceSince: at('2026-11-26T22:00:00Z'),
  drained: false,
  asleep: true,
  ownerUserId: 'u1',
};

const vmRow: VmRecord = {
  id: 'v1',
  ownerUserId: 'u1',
  poolId: 'p1',
  state: 'SUSPENDED',
  pinned: false,
  currentHostId: null,
  sourceHostId: null,
  savedStateHostId: 'h1',
  savedStatePath: '/var/lib/deskpool/saved/dpt-a.save',
  fencingGeneration: 7,
  vcpus: 2,
  memoryMiB: 4096,
  diskGiB: 40,
  augmentedVcpus: 0,
  augmentedMemoryMiB: 0,
  desiredHostId: null,
};

describe('rows to planner types', () => {
  it('maps a pool: ISO weekdays to 0 = Sunday, minutes and seconds to ms, percent to a fraction', () => {
    const pool = poolFromRow(poolRow);
    expect(pool.policy.officeHours).toEqual({ days: [0, 1, 2, 3, 4, 5], start: '08:00', end: '17:30' });
    expect(pool.policy.idleThresholdMs).toBe(20 * 60_000);
    expect(pool.policy.checkpointGraceMs).toBe(45_000);
    expect(pool.policy.maxBatchShareWhileOwnerPresent).toBe(0.25);
    expect(pool.policy.nightWindow).toEqual({ start: '20:00', end: '06:00' });
    expect(pool.policy.preStaging.enabled).toBe(false);
    expect(pool.policy.batchWindow).toBe('outsideOfficeHours');
    expect(pool.preStageBudget).toEqual({ localDate: '2026-11-26', usedCoreMs: 1200 });
    expect(poolFromRow({ ...poolRow, batchAllowed: false, preStageBudget: null }).policy.batchWindow).toBe('never');
    expect(poolFromRow({ ...poolRow, preStageBudget: { junk: true } }).preStageBudget).toEqual({ localDate: '', usedCoreMs: 0 });
  });

  it('maps a host, its labels and GPU', () => {
    const host = hostFromRow(hostRow);
    expect(host).toMatchObject({ online: true, asleep: true, presence: 'idle', presenceSince: Date.parse('2026-11-26T22:00:00Z'), draining: false });
    expect(host.resources).toEqual({ cores: 8, memoryMiB: 16384, diskGiB: 500, gpus: 1 });
    expect(host.labels).toEqual({ ssd: 'true', rack: '3' });
    expect(hostFromRow({ ...hostRow, presenceSince: null, gpu: null, onlineState: 'offline' })).toMatchObject({ presenceSince: 0, online: false, resources: { gpus: 0 } });
  });

  it('gives placement constraints the host name, CPU model and GPU to test', () => {
    expect(hostFromRow({ ...hostRow, name: 'pc-7', inventory: { cpuCores: 8, cpuModel: 'EPYC 7302' } }).attributes).toEqual({ 'host.name': 'pc-7', 'cpu.model': 'EPYC 7302', gpu: 'rtx' });
    expect(hostFromRow({ ...hostRow, gpu: null, name: 'pc-8', inventory: [] }).attributes).toEqual({ 'host.name': 'pc-8' });
  });

  it('reads saved state as local (with a host), shared (path only) or none', () => {
    expect(vmFromRow(vmRow).savedState).toEqual({ kind: 'local', hostId: 'h1' });
    expect(vmFromRow({ ...vmRow, savedStateHostId: null }).savedState).toEqual({ kind: 'shared' });
    expect(vmFromRow({ ...vmRow, savedStateHostId: null, savedStatePath: null }).savedState).toBeNull();
    expect(vmFromRow(vmRow)).toMatchObject({ generation: 7, hostId: null, augmented: null, size: { cores: 2, memoryMiB: 4096, diskGiB: 40, gpus: 0 } });
    expect(vmFromRow({ ...vmRow, augmentedVcpus: 1, augmentedMemoryMiB: 512 }).augmented).toEqual({ cores: 1, memoryMiB: 512 });
  });

  it('skips users outside any pool and reads arrivals as epoch ms', () => {
    expect(userFromRow({ id: 'u', poolId: null, homeHostId: null, arrivals: [], preStage: null })).toBeNull();
    const user = userFromRow({ id: 'u', poolId: 'p1', homeHostId: 'h1', arrivals: [at('2026-11-25T07:55:00Z')], preStage: { localDate: '2026-11-26', predictedAt: 1, stagedAt: 2 } });
    expect(user).toEqual({ id: 'u', poolId: 'p1', homeHostId: 'h1', arrivals: [Date.parse('2026-11-25T07:55:00Z')], preStage: { localDate: '2026-11-26', predictedAt: 1, stagedAt: 2 } });
  });

  it('reads a job spec for resources, retries, checkpointing and labels; refuses an unreadable spec', () => {
    const created = at('2026-11-26T10:00:00Z');
    const row = { id: 'j1', poolId: null, submitterUserId: null, submittedBy: 'token:abc', priority: 5, deadline: null, createdAt: created, cancelRequestedAt: null };
    const { job, taskResources } = jobFromRow({ ...row, spec: { name: 'x', command: ['true'], cores: 4, memoryMiB: 2048, retries: 1, checkpointable: false, labels: ['gpu'], gpu: true } });
    expect(job).toMatchObject({ submitterId: 'token:abc', maxRetries: 1, checkpointable: false, constraints: { labels: { gpu: 'true' } }, cancelled: false, submittedAt: created.getTime() });
    expect(taskResources).toEqual({ cores: 4, memoryMiB: 2048, diskGiB: 0, gpus: 1 });
    expect(() => jobFromRow({ ...row, spec: { cores: 'many' } })).toThrow(UnreadableRowError);
    const rules = [{ attribute: 'cpu.model', operator: 'in', value: ['EPYC', 'Xeon'] }, { attribute: 'label.ssd', operator: 'exists' }];
    expect(jobFromRow({ ...row, spec: { name: 'y', command: ['true'], constraints: rules } }).job.constraints).toEqual({ labels: {}, rules });
  });

  it('maps every task state both ways; "placed" holds resources like running', () => {
    expect(taskStateToCore('placed')).toBe('RUNNING');
    expect(taskStateToCore('deadline_missed')).toBe('FAILED');
    for (const s of ['QUEUED', 'RUNNING', 'CHECKPOINTING', 'CHECKPOINTED', 'STOPPING', 'SUCCEEDED', 'FAILED', 'CANCELLED'] as const) {
      expect(taskStateToCore(taskStateToRow(s))).toBe(s);
    }
    const task = taskFromRow(
      { id: 't', jobId: 'j', state: 'checkpointed', hostId: null, generation: 2, attempts: 1, restarts: 0, checkpointHostId: 'h1', checkpointPath: '/c', afterStop: 'bogus' },
      { cores: 1, memoryMiB: 1, diskGiB: 0, gpus: 0 },
    );
    expect(task).toMatchObject({ state: 'CHECKPOINTED', checkpoint: { kind: 'local', hostId: 'h1' }, afterStop: null });
  });

  it('rebuilds an in-flight operation from its planned command and refuses one without', () => {
    const createdAt = at('2026-11-26T23:00:00Z');
    const op = operationFromRow({ idempotencyKey: 'op-1', hostId: 'h1', generation: 4, createdAt, planned: { type: 'suspendDesktop', subject: { kind: 'vm', id: 'v1' } } });
    expect(op).toEqual({ id: 'op-1', type: 'suspendDesktop', subject: { kind: 'vm', id: 'v1' }, hostId: 'h1', generation: 4, startedAt: createdAt.getTime() });
    expect(() => operationFromRow({ idempotencyKey: 'op-2', hostId: 'h1', generation: 4, createdAt, planned: null })).toThrow(UnreadableRowError);
  });

  it('turns "k=v" and bare labels into a record', () => {
    expect(labelsToRecord(['a', 'b=c', 'd=e=f'])).toEqual({ a: 'true', b: 'c', d: 'e=f' });
  });
});

describe('planner changes to columns', () => {
  const now = at('2026-11-26T23:00:00Z');

  it('writes desktop fields to their columns, saved state with a path', () => {
    const data = columnsForUpdate('vms', 'v1', { state: 'SUSPENDED', hostId: null, savedState: { kind: 'local', hostId: 'h1' }, generation: 5, augmented: null }, { name: 'dpt-a', now });
    expect(data).toEqual({
      state: 'SUSPENDED',
      stateChangedAt: now,
      currentHostId: null,
      savedStateHostId: 'h1',
      savedStatePath: '/var/lib/deskpool/saved/dpt-a.save',
      fencingGeneration: 5,
      augmentedVcpus: 0,
      augmentedMemoryMiB: 0,
    });
    expect(columnsForUpdate('vms', 'v1', { savedState: null }, { now })).toEqual({ savedStateHostId: null, savedStatePath: null });
  });

  it('writes host, task, user and job fields', () => {
    expect(columnsForUpdate('hosts', 'h', { online: false, needsReconcile: true, presence: 'unknown', presenceSince: 5 }, { now })).toEqual({
      onlineState: 'offline',
      needsReconcile: true,
      presenceState: 'unknown',
      presenceSince: new Date(5),
    });
    expect(columnsForUpdate('tasks', 't', { state: 'CANCELLED', checkpoint: null, afterStop: null }, { now })).toEqual({
      state: 'cancelled',
      finishedAt: now,
      checkpointHostId: null,
      checkpointPath: null,
      afterStop: null,
    });
    expect(columnsForUpdate('users', 'u', { arrivals: [1000] }, { now })).toEqual({ arrivals: [new Date(1000)] });
    expect(columnsForUpdate('jobs', 'j', { cancelled: true }, { now })).toEqual({ cancelRequestedAt: now });
  });

  it('refuses a field it cannot store instead of dropping it', () => {
    expect(() => columnsForUpdate('hosts', 'h', { labels: {} }, { now })).toThrow(UnmappedFieldError);
  });
});

describe('planner commands to agent frames', () => {
  const names = {
    vmName: (id: string) => (id === 'v1' ? 'dpt-a' : undefined),
    hostName: (id: string) => (id === 'h2' ? 'pc-2' : undefined),
    vmFootprint: (id: string) => (id === 'v1' ? { vcpus: 3, memoryMiB: 4608 } : undefined),
    hostMac: (id: string) => (id === 'h2' ? '52:54:00:00:00:02' : undefined),
  };
  const base = { key: 'ev-1/suspendDesktop/v1/g4', cause: { eventId: 'ev-1', event: 'tick' as const, rule: 'desktop.idleSuspend' }, hostId: 'h1', generation: 4, after: [] };

  function frameOf(cmd: Command): unknown {
    const agent = agentCommandFor(cmd, names);
    if (!agent) return null;
    return commandFrameSchema.parse(commandFrameFor(wireKey(cmd.key), 'row-1', agent));
  }

  it('hashes core keys into protocol-safe, stable idempotency keys', () => {
    const k = wireKey('tick.idleCheck.p/7/suspendDesktop/v1/g4');
    expect(k).toMatch(/^op-[0-9a-f]{40}$/);
    expect(wireKey('tick.idleCheck.p/7/suspendDesktop/v1/g4')).toBe(k);
    expect(wireKey(k)).toBe(k);
    expect(wireKey('tick.idleCheck.p/7/suspendDesktop/v1/g5')).not.toBe(k);
  });

  it('builds valid frames for desktop commands with the fencing generation', () => {
    expect(frameOf({ ...base, type: 'suspendDesktop', vmId: 'v1', saveTo: { kind: 'local', hostId: 'h1' } })).toMatchObject({
      kind: 'suspend',
      target: { vmId: 'v1', domainName: 'dpt-a', generation: 4 },
    });
    expect(frameOf({ ...base, type: 'restoreDesktop', vmId: 'v1', from: { kind: 'coldBoot' } })).toMatchObject({ kind: 'start' });
    expect(frameOf({ ...base, type: 'restoreDesktop', vmId: 'v1', from: { kind: 'shared' } })).toMatchObject({ kind: 'restore' });
    expect(frameOf({ ...base, type: 'moveSavedState', vmId: 'v1', fromHostId: 'h1', toHostId: 'h2' })).toMatchObject({
      kind: 'move-state',
      params: { targetHost: 'pc-2', path: '/var/lib/deskpool/saved/dpt-a.save' },
    });
    expect(frameOf({ ...base, type: 'hotplug', vmId: 'v1', addCores: -1, addMemoryMiB: -512, undo: true })).toMatchObject({ kind: 'hotplug', params: { vcpus: 2, memoryMiB: 4096 } });
    expect(frameOf({ ...base, type: 'sleepHost' })).toMatchObject({ kind: 'sleep-host', params: { mode: 'suspend' } });
    expect(frameOf({ ...base, type: 'placeTask', taskId: 't1', resources: { cores: 1, memoryMiB: 1, diskGiB: 0, gpus: 0 } })).toMatchObject({ kind: 'run-batch', target: { domainName: 'dp-task-t1' } });
  });

  it('restores a desktop whose saved state is local with the path a moved state lands at, and moves a local checkpoint', () => {
    expect(frameOf({ ...base, type: 'restoreDesktop', vmId: 'v1', from: { kind: 'local', hostId: 'h2' } })).toMatchObject({
      kind: 'restore',
      params: { statePath: '/var/lib/deskpool/saved/dpt-a.save' },
    });
    expect(frameOf({ ...base, type: 'restoreDesktop', vmId: 'v1', from: { kind: 'shared' } })).toMatchObject({ kind: 'restore', params: {} });
    expect(frameOf({ ...base, type: 'moveCheckpoint', taskId: 't1', fromHostId: 'h1', toHostId: 'h2' })).toMatchObject({
      kind: 'move-state',
      target: { vmId: 't1', domainName: 'dp-task-t1', generation: 4 },
      params: { path: '/var/lib/deskpool/checkpoints/t1.save', targetHost: 'pc-2', targetPath: '/var/lib/deskpool/checkpoints/t1.save' },
    });
    // Without the target's host name the move is not sent half-specified.
    expect(frameOf({ ...base, type: 'moveCheckpoint', taskId: 't1', fromHostId: 'h2', toHostId: 'h1' })).toBeNull();
  });

  it('maps reconcile with the domain names the agent must keep, and no fencing target', () => {
    expect(frameOf({ ...base, generation: 0, type: 'reconcileHost', expect: { vms: [{ vmId: 'v1', generation: 5 }], tasks: [{ taskId: 't1', generation: 2 }] } })).toEqual({
      type: 'command',
      idempotencyKey: wireKey(base.key),
      operationId: 'row-1',
      kind: 'reconcile',
      params: { expect: { vms: [{ vmId: 'v1', domainName: 'dpt-a', generation: 5 }], tasks: [{ taskId: 't1', domainName: 'dp-task-t1', generation: 2 }] } },
    });
  });

  it('maps delete-state to the conventional path, stop-batch to the task VM and wake-host with the MAC', () => {
    expect(frameOf({ ...base, type: 'deleteSavedState', vmId: 'v1', location: { kind: 'local', hostId: 'h1' } })).toMatchObject({
      kind: 'delete-state',
      target: { vmId: 'v1', domainName: 'dpt-a', generation: 4 },
      params: { path: '/var/lib/deskpool/saved/dpt-a.save' },
    });
    expect(frameOf({ ...base, type: 'stopBatch', taskId: 't1', then: 'cancel' })).toMatchObject({
      kind: 'stop-batch',
      target: { vmId: 't1', domainName: 'dp-task-t1', generation: 4 },
      params: { taskId: 't1', then: 'cancel' },
    });
    expect(frameOf({ ...base, type: 'wakeHost', targetHostId: 'h2' })).toMatchObject({ kind: 'wake-host', params: { targetHostId: 'h2', mac: '52:54:00:00:00:02' } });
  });

  it("carries the core's after as wire keys, and leaves it out when empty", () => {
    const checkpointKey = 'ev-1/checkpointBatch/t1/g3';
    const restore = frameOf({ ...base, type: 'restoreDesktop', vmId: 'v1', from: { kind: 'shared' }, after: [checkpointKey] });
    expect(restore).toMatchObject({ kind: 'restore', after: [wireKey(checkpointKey)] });
    expect(frameOf({ ...base, type: 'sleepHost' })).not.toHaveProperty('after');
  });

  it('returns null rather than a half-specified command when a name is unknown', () => {
    expect(frameOf({ ...base, type: 'reconcileHost', expect: { vms: [{ vmId: 'unknown', generation: 1 }], tasks: [] } })).toBeNull();
    expect(frameOf({ ...base, type: 'wakeHost', targetHostId: 'h-without-mac' })).toBeNull();
    expect(frameOf({ ...base, type: 'suspendDesktop', vmId: 'unknown', saveTo: { kind: 'shared' } })).toBeNull();
  });
});
