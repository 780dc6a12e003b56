import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SimulatedDriver, realSimClock, type DomainSpecInput } from '@deskpool/kvm-driver';
import type { CommandFrame } from '@deskpool/protocol';
import { systemClock } from '../src/clock.js';
import { CommandExecutor, type OpReport } from '../src/commands/executor.js';
import { CommandJournal } from '../src/commands/journal.js';

// The simulated hypervisor stands in where the hypervisor is not the point: these tests are
// about the executor's bookkeeping. The real-libvirt path is in apps/api/test/agent-libvirt.test.ts.
const spec = (name: string): DomainSpecInput => ({
  name,
  domainType: 'qemu',
  vcpus: 1,
  maxVcpus: 2,
  memoryMiB: 128,
  maxMemoryMiB: 256,
  serialLogPath: `/tmp/${name}.log`,
  boot: { kernel: '/boot/vmlinuz' },
});

function cmd(key: string, kind: CommandFrame['kind'], generation: number, params: Record<string, unknown> = {}, vmId = 'vm-1', domainName = 'dpt-exec'): CommandFrame {
  return { type: 'command', idempotencyKey: key, kind, target: { vmId, domainName, generation }, params } as CommandFrame;
}

describe('command executor', () => {
  let dir: string;
  let driver: SimulatedDriver;
  let journal: CommandJournal;
  let results: OpReport[];
  let progress: { key: string; percent: number }[];
  let executor: CommandExecutor;

  const open = async () => {
    journal = await CommandJournal.open(path.join(dir, 'journal.jsonl'));
    executor = new CommandExecutor(journal, driver, systemClock, {
      progress: (key, percent) => progress.push({ key, percent }),
      result: (r) => results.push(r),
      log: () => undefined,
    }, async () => undefined, 200);
  };

  beforeEach(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'dpt-exec-'));
    driver = new SimulatedDriver({ clock: realSimClock, timings: { bootMs: 5, opOverheadMs: 1, diskWriteMiBps: 1e6, diskReadMiBps: 1e6 } });
    results = [];
    progress = [];
    await open();
  });
  afterEach(async () => {
    await journal.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  it('defines and starts, suspends and restores through the driver', async () => {
    await executor.handle(cmd('op-start-001', 'start', 1, { spec: spec('dpt-exec') }));
    await executor.handle(cmd('op-susp-001', 'suspend', 1));
    expect(await driver.state('dpt-exec')).toBe('saved');
    await executor.handle(cmd('op-rest-001', 'restore', 1));
    expect(await driver.state('dpt-exec')).toBe('running');
    expect(results.map((r) => [r.idempotencyKey, r.outcome, r.replayed])).toEqual([
      ['op-start-001', 'succeeded', false],
      ['op-susp-001', 'succeeded', false],
      ['op-rest-001', 'succeeded', false],
    ]);
  });

  it('answers a repeat from the journal, even after a restart, without acting again', async () => {
    await executor.handle(cmd('op-start-001', 'start', 1, { spec: spec('dpt-exec') }));
    await executor.handle(cmd('op-susp-001', 'suspend', 1));
    await journal.close();
    await open();
    await driver.restore('dpt-exec'); // someone else resumed it meanwhile
    await executor.handle(cmd('op-susp-001', 'suspend', 1));
    expect(results.at(-1)).toMatchObject({ idempotencyKey: 'op-susp-001', outcome: 'succeeded', replayed: true });
    expect(await driver.state('dpt-exec')).toBe('running'); // not suspended a second time
  });

  it('runs a duplicate delivered while the first copy still runs only once', async () => {
    const first = executor.handle(cmd('op-start-001', 'start', 1, { spec: spec('dpt-exec') }));
    const second = executor.handle(cmd('op-start-001', 'start', 1, { spec: spec('dpt-exec') }));
    await Promise.all([first, second]);
    expect(results.filter((r) => r.idempotencyKey === 'op-start-001' && !r.replayed)).toHaveLength(1);
  });

  it('refuses a stale generation, records the refusal, and a conflicting reuse of a key', async () => {
    await executor.handle(cmd('op-start-001', 'start', 5, { spec: spec('dpt-exec') }));
    await executor.handle(cmd('op-susp-old', 'suspend', 4));
    expect(results.at(-1)).toMatchObject({ outcome: 'refused', error: { code: 'STALE_GENERATION' } });
    expect(await driver.state('dpt-exec')).toBe('running');
    await executor.handle(cmd('op-susp-old', 'suspend', 4));
    expect(results.at(-1)).toMatchObject({ outcome: 'refused', replayed: true });
    await executor.handle(cmd('op-start-001', 'suspend', 5));
    expect(results.at(-1)).toMatchObject({ outcome: 'refused', error: { code: 'IDEMPOTENCY_CONFLICT' } });
    // Another VM's generations are its own business.
    await executor.handle(cmd('op-start-002', 'start', 1, { spec: spec('dpt-exec-2') }, 'vm-2', 'dpt-exec-2'));
    expect(results.at(-1)).toMatchObject({ outcome: 'succeeded' });
  });

  it('reports typed hypervisor failures and invalid specs as failed results with a code', async () => {
    await executor.handle(cmd('op-rest-404', 'restore', 1, {}, 'vm-9', 'dpt-missing'));
    expect(results.at(-1)).toMatchObject({ outcome: 'failed', error: { code: 'DOMAIN_NOT_FOUND' } });
    await executor.handle(cmd('op-start-bad', 'start', 1, { spec: { ...spec('dpt-exec'), vcpus: 0 } }));
    expect(results.at(-1)).toMatchObject({ outcome: 'failed', error: { code: 'INVALID_SPEC' } });
    expect(results.at(-1)?.error?.message).toMatch(/vcpus/);
  });

  it('after a restart reconciles an unfinished command against the domain state and reports it once', async () => {
    await executor.handle(cmd('op-start-001', 'start', 1, { spec: spec('dpt-exec') }));
    // The agent died right after journaling a suspend that the hypervisor then completed.
    await journal.append({ t: 'begin', key: 'op-susp-crash', kind: 'suspend', vmId: 'vm-1', domainName: 'dpt-exec', generation: 1, params: {}, at: new Date().toISOString() });
    await driver.managedSave('dpt-exec');
    // ... and one whose start never happened.
    await journal.append({ t: 'begin', key: 'op-start-crash', kind: 'start', vmId: 'vm-2', domainName: 'dpt-never', generation: 1, params: {}, at: new Date().toISOString() });
    await journal.close();
    await open();
    results = [];
    await executor.reconcile();
    expect(results.map((r) => [r.idempotencyKey, r.outcome, r.error?.code])).toEqual(
      expect.arrayContaining([
        ['op-susp-crash', 'succeeded', undefined],
        ['op-start-crash', 'failed', 'INTERRUPTED'],
      ]),
    );
    expect(journal.incomplete()).toEqual([]);
    await executor.handle(cmd('op-susp-crash', 'suspend', 1));
    expect(results.at(-1)).toMatchObject({ idempotencyKey: 'op-susp-crash', outcome: 'succeeded', replayed: true });
  });

  it('hot-plugs vCPUs and says plainly that move-state needs an SSH identity', async () => {
    await executor.handle(cmd('op-start-001', 'start', 1, { spec: spec('dpt-exec') }));
    await executor.handle(cmd('op-hot-001', 'hotplug', 1, { vcpus: 2 }));
    expect(results.at(-1)).toMatchObject({ outcome: 'succeeded' });
    expect((await driver.stats('dpt-exec')).vcpus).toBe(2);
    await executor.handle(cmd('op-move-001', 'move-state', 1, { path: '/var/lib/x.save', targetHost: 'pc2', targetPath: '/var/lib/x.save' }));
    expect(results.at(-1)).toMatchObject({ outcome: 'failed', error: { code: 'NOT_CONFIGURED' } });
  });
});
