import { createSocket, type Socket } from 'node:dgram';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SimulatedDriver, realSimClock, type DomainSpecInput } from '@deskpool/kvm-driver';
import type { CommandFrame } from '@deskpool/protocol';
import { ManualClock, systemClock, type Clock } from '../src/clock.js';
import { CommandExecutor, type ExecutorOptions, type OpReport } from '../src/commands/executor.js';
import { magicPacket, planReconcile } from '../src/commands/fleet.js';
import { CommandJournal } from '../src/commands/journal.js';

// The simulated hypervisor stands in for libvirt: these tests are about what the executor
// decides and journals for the fleet commands, not about virsh.
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

type Frame = Record<string, unknown>;
const frame = (f: Frame): CommandFrame => ({ type: 'command', ...f }) as CommandFrame;
const target = (vmId: string, domainName: string, generation: number) => ({ vmId, domainName, generation });

describe('fleet commands in the executor', () => {
  let dir: string;
  let driver: SimulatedDriver;
  let journal: CommandJournal;
  let results: OpReport[];
  let executor: CommandExecutor;

  const open = async (clock: Clock = systemClock, options: ExecutorOptions = {}) => {
    journal = await CommandJournal.open(path.join(dir, 'journal.jsonl'));
    executor = new CommandExecutor(journal, driver, clock, { progress: () => undefined, result: (r) => results.push(r), log: () => undefined }, async () => undefined, 200, undefined, options);
  };
  const resultOf = (key: string) => results.find((r) => r.idempotencyKey === key);
  const boot = async (name: string) => {
    await driver.define(spec(name));
    await driver.start(name);
  };

  beforeEach(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'dpt-fleet-'));
    driver = new SimulatedDriver({ clock: realSimClock, timings: { bootMs: 1, opOverheadMs: 1, diskWriteMiBps: 1e6, diskReadMiBps: 1e6 } });
    results = [];
    await open();
  });
  afterEach(async () => {
    await journal.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  describe('reconcile', () => {
    it('keeps what the control plane expects, destroys live strays, leaves saved ones, reports what runs', async () => {
      await boot('dpt-alice'); // a LOST desktop still running: adopted
      await boot('dp-task-t1'); // a batch run the scheduler requeued elsewhere: stray
      await boot('dpt-bob'); // a desktop the scheduler restored elsewhere meanwhile: stray
      // The agent ran dpt-bob for the control plane before the fence, so it is deskpool's to stop.
      await executor.handle(frame({ idempotencyKey: 'op-start-bob', kind: 'start', target: target('vm-bob', 'dpt-bob', 1), params: {} }));
      await boot('admin-own-vm'); // never managed by deskpool on this PC: not ours to touch
      await boot('dpt-carol');
      await driver.managedSave('dpt-carol'); // saved, unexpected: may be the only copy, kept
      await boot('dp-task-t2'); // an expected batch run
      await executor.handle(
        frame({
          idempotencyKey: 'op-reconcile-1',
          kind: 'reconcile',
          params: {
            expect: {
              vms: [{ vmId: 'vm-alice', domainName: 'dpt-alice', generation: 5 }],
              tasks: [{ taskId: 't2', domainName: 'dp-task-t2', generation: 3 }],
            },
          },
        }),
      );
      expect(resultOf('op-reconcile-1')).toMatchObject({
        outcome: 'succeeded',
        result: { foundRunningVmIds: ['vm-alice'], foundRunningTaskIds: ['t2'], destroyed: ['dp-task-t1', 'dpt-bob'], changed: true },
      });
      expect(await driver.state('dpt-alice')).toBe('running');
      expect(await driver.state('dp-task-t2')).toBe('running');
      expect(await driver.state('dpt-bob')).toBe('shutoff');
      expect(await driver.state('dp-task-t1')).toBe('shutoff');
      expect(await driver.state('dpt-carol')).toBe('saved');
      expect(await driver.state('admin-own-vm')).toBe('running');
    });

    it('fences commands older than the generations it was told, even after a restart', async () => {
      await boot('dpt-alice');
      await executor.handle(frame({ idempotencyKey: 'op-reconcile-2', kind: 'reconcile', params: { expect: { vms: [{ vmId: 'vm-alice', domainName: 'dpt-alice', generation: 7 }], tasks: [] } } }));
      await journal.close();
      await open();
      await executor.handle(frame({ idempotencyKey: 'op-old-suspend', kind: 'suspend', target: target('vm-alice', 'dpt-alice', 6), params: {} }));
      expect(resultOf('op-old-suspend')).toMatchObject({ outcome: 'refused', error: { code: 'STALE_GENERATION' } });
      expect(await driver.state('dpt-alice')).toBe('running');
    });

    it('reports nothing found on an empty host and changes nothing', async () => {
      await executor.handle(frame({ idempotencyKey: 'op-reconcile-3', kind: 'reconcile', params: { expect: { vms: [{ vmId: 'vm-a', domainName: 'dpt-a', generation: 1 }], tasks: [] } } }));
      expect(resultOf('op-reconcile-3')).toMatchObject({ outcome: 'succeeded', result: { foundRunningVmIds: [], foundRunningTaskIds: [], destroyed: [], changed: false } });
    });

    it('plans from the domain list alone (pure)', () => {
      const plan = planReconcile(
        { vms: [{ vmId: 'v1', domainName: 'd1', generation: 1 }, { vmId: 'v2', domainName: 'd2', generation: 1 }], tasks: [] },
        [
          { name: 'd1', state: 'paused' },
          { name: 'd2', state: 'shutoff' },
          { name: 'x', state: 'crashed' },
          { name: 'y', state: 'shutoff' },
          { name: 'not-ours', state: 'running' },
        ],
        (name) => name !== 'not-ours',
      );
      expect(plan).toEqual({ destroy: ['x'], foundRunningVmIds: ['v1'], foundRunningTaskIds: [] });
    });
  });

  describe('delete-state', () => {
    it('removes the file once, then answers changed:false; a repeat key replays', async () => {
      const file = path.join(dir, 'alice.save');
      writeFileSync(file, 'state');
      await boot('dpt-alice'); // restored from it already
      const del = (key: string) => executor.handle(frame({ idempotencyKey: key, kind: 'delete-state', target: target('vm-alice', 'dpt-alice', 2), params: { path: file } }));
      await del('op-delete-001');
      expect(existsSync(file)).toBe(false);
      await del('op-delete-002');
      await del('op-delete-001');
      expect(results.map((r) => [r.idempotencyKey, r.outcome, r.replayed, r.result?.changed])).toEqual([
        ['op-delete-001', 'succeeded', false, true],
        ['op-delete-002', 'succeeded', false, false],
        ['op-delete-001', 'succeeded', true, true],
      ]);
    });

    it('refuses to delete while the domain here is saved, and keeps the file', async () => {
      const file = path.join(dir, 'bob.save');
      writeFileSync(file, 'state');
      await boot('dpt-bob');
      await driver.managedSave('dpt-bob');
      await executor.handle(frame({ idempotencyKey: 'op-delete-003', kind: 'delete-state', target: target('vm-bob', 'dpt-bob', 2), params: { path: file } }));
      expect(resultOf('op-delete-003')).toMatchObject({ outcome: 'failed', error: { code: 'STATE_NEEDED' } });
      expect(existsSync(file)).toBe(true);
    });

    it('deletes when the desktop is not defined here (it was restored on another PC)', async () => {
      const file = path.join(dir, 'carol.save');
      writeFileSync(file, 'state');
      await executor.handle(frame({ idempotencyKey: 'op-delete-004', kind: 'delete-state', target: target('vm-carol', 'dpt-carol', 2), params: { path: file } }));
      expect(resultOf('op-delete-004')).toMatchObject({ outcome: 'succeeded', result: { changed: true } });
    });

    it('refuses a directory and a stale generation', async () => {
      await executor.handle(frame({ idempotencyKey: 'op-delete-005', kind: 'delete-state', target: target('vm-dan', 'dpt-dan', 3), params: { path: dir } }));
      expect(resultOf('op-delete-005')).toMatchObject({ outcome: 'failed', error: { code: 'NOT_A_STATE_FILE' } });
      expect(existsSync(dir)).toBe(true);
      await executor.handle(frame({ idempotencyKey: 'op-delete-006', kind: 'delete-state', target: target('vm-dan', 'dpt-dan', 2), params: { path: '/nonexistent.save' } }));
      expect(resultOf('op-delete-006')).toMatchObject({ outcome: 'refused', error: { code: 'STALE_GENERATION' } });
    });
  });

  describe('stop-batch', () => {
    it('destroys the batch VM, and a second stop finds nothing to do', async () => {
      await boot('dp-task-t9');
      const stop = (key: string) => executor.handle(frame({ idempotencyKey: key, kind: 'stop-batch', target: target('t9', 'dp-task-t9', 4), params: { taskId: 't9', then: 'requeue' } }));
      await stop('op-stop-0001');
      expect(await driver.state('dp-task-t9')).toBe('shutoff');
      await stop('op-stop-0002');
      expect(results.map((r) => [r.outcome, r.result?.changed, r.result?.then])).toEqual([
        ['succeeded', true, 'requeue'],
        ['succeeded', false, 'requeue'],
      ]);
    });
  });

  describe('wake-host', () => {
    let listener: Socket | undefined;
    afterEach(() => {
      listener?.close();
      listener = undefined;
    });

    it('broadcasts a 102-byte magic packet: six 0xFF then the MAC sixteen times', async () => {
      const socket = createSocket('udp4');
      listener = socket;
      await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
      const port = socket.address().port;
      const received = new Promise<Buffer>((resolve) => socket.once('message', (msg) => resolve(msg)));
      await journal.close();
      await open(systemClock, { wakeOnLan: { address: '127.0.0.1', port } });
      await executor.handle(frame({ idempotencyKey: 'op-wake-0001', kind: 'wake-host', params: { targetHostId: 'h-2', mac: '52:54:00:AB:cd:0F' } }));
      expect(resultOf('op-wake-0001')).toMatchObject({ outcome: 'succeeded', result: { targetHostId: 'h-2', bytes: 102 } });
      const packet = await received;
      expect(packet.length).toBe(102);
      expect([...packet.subarray(0, 6)]).toEqual([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
      for (let i = 0; i < 16; i++) expect([...packet.subarray(6 + i * 6, 12 + i * 6)]).toEqual([0x52, 0x54, 0x00, 0xab, 0xcd, 0x0f]);
      expect(packet.equals(magicPacket('52-54-00-ab-cd-0f'))).toBe(true);
    });

    it('fails with the socket error when the packet cannot be sent', async () => {
      await journal.close();
      await open(systemClock, { wakeOnLan: { address: '203.0.113.1', port: 0 } });
      await executor.handle(frame({ idempotencyKey: 'op-wake-0002', kind: 'wake-host', params: { targetHostId: 'h-2', mac: '52:54:00:ab:cd:0f' } }));
      expect(resultOf('op-wake-0002')).toMatchObject({ outcome: 'failed', error: { code: 'AGENT_ERROR' } });
    });
  });

  describe('after: ordering across VMs', () => {
    it('starts a command only once the commands it names have finished', async () => {
      await boot('dp-task-t1');
      await driver.define(spec('dpt-alice'));
      const order: string[] = [];
      results = [];
      const seen = () => results.map((r) => r.idempotencyKey);
      // The restore arrives first; it must wait for the checkpoint that makes its room.
      const restore = executor.handle(frame({ idempotencyKey: 'op-restore-01', kind: 'start', target: target('vm-alice', 'dpt-alice', 2), params: {}, after: ['op-checkpt-01'] }));
      await new Promise((r) => setTimeout(r, 20));
      order.push(...seen());
      const checkpoint = executor.handle(frame({ idempotencyKey: 'op-checkpt-01', kind: 'checkpoint-batch', target: target('t1', 'dp-task-t1', 1), params: { taskId: 't1' } }));
      await Promise.all([restore, checkpoint]);
      expect(order).toEqual([]);
      expect(seen()).toEqual(['op-checkpt-01', 'op-restore-01']);
      expect(await driver.state('dp-task-t1')).toBe('saved');
      expect(await driver.state('dpt-alice')).toBe('running');
    });

    it('starts anyway once the bound passes, and says which it started without', async () => {
      const clock = new ManualClock(Date.parse('2026-11-26T23:00:00Z'));
      await journal.close();
      await open(clock, { afterWaitMs: 60_000 });
      await driver.define(spec('dpt-alice'));
      const started = executor.handle(frame({ idempotencyKey: 'op-restore-02', kind: 'start', target: target('vm-alice', 'dpt-alice', 2), params: {}, after: ['op-never-sent'] }));
      await new Promise((r) => setTimeout(r, 20));
      expect(results).toEqual([]);
      clock.advance(60_000);
      await started;
      expect(resultOf('op-restore-02')).toMatchObject({ outcome: 'succeeded', result: { startedWithout: ['op-never-sent'] } });
    });

    it('does not wait for a command that already failed', async () => {
      await executor.handle(frame({ idempotencyKey: 'op-checkpt-03', kind: 'checkpoint-batch', target: target('t3', 'dp-task-t3', 1), params: { taskId: 't3' } }));
      await driver.define(spec('dpt-alice'));
      await executor.handle(frame({ idempotencyKey: 'op-restore-03', kind: 'start', target: target('vm-alice', 'dpt-alice', 2), params: {}, after: ['op-checkpt-03'] }));
      expect(results.map((r) => [r.idempotencyKey, r.outcome])).toEqual([
        ['op-checkpt-03', 'failed'],
        ['op-restore-03', 'succeeded'],
      ]);
      expect(resultOf('op-restore-03')?.result?.startedWithout).toBeUndefined();
    });
  });
});
