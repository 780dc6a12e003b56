// Batch task watching with the simulated hypervisor (the real guest is in
// batch-watcher-libvirt.test.ts): console output as task-output frames, one task-finished when
// the guest powers off, nothing when the control plane checkpoints or stops the task, offsets
// kept across agent restarts and resumes.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SimulatedDriver, realSimClock } from '@deskpool/kvm-driver';
import type { CommandFrame } from '@deskpool/protocol';
import { systemClock } from '../src/clock.js';
import { simulatedConsoleLog } from '../src/batch/console-log.js';
import { parseGuestOutcome } from '../src/batch/guest-result.js';
import { BatchTaskStore } from '../src/batch/task-store.js';
import { BatchWatcher, type TaskEvent } from '../src/batch/watcher.js';
import { CommandExecutor, standardGuestScript, type OpReport } from '../src/commands/executor.js';
import { CommandJournal } from '../src/commands/journal.js';

const TASK = 'task-1';
const DOMAIN = 'dp-task-task-1';

/** A batch VM the simulated guest model runs: counts to n (one step per 200 ms), then powers off. */
const countTo = (n: number, poweroff = true) => ({
  name: DOMAIN,
  vcpus: 1,
  maxVcpus: 1,
  memoryMiB: 128,
  maxMemoryMiB: 128,
  boot: { kernel: '/boot/vmlinux', cmdline: `console=ttyS0 deskpool.mode=count-to:${n}${poweroff ? ' deskpool.poweroff=1' : ''}` },
});

function cmd(key: string, kind: CommandFrame['kind'], generation: number, params: Record<string, unknown>): CommandFrame {
  return { type: 'command', idempotencyKey: key, kind, target: { vmId: TASK, domainName: DOMAIN, generation }, params } as CommandFrame;
}

async function until<T>(what: string, check: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('batch watcher (simulated hypervisor)', () => {
  let dir: string;
  let driver: SimulatedDriver;
  let journal: CommandJournal;
  let store: BatchTaskStore;
  let watcher: BatchWatcher;
  let executor: CommandExecutor;
  let events: TaskEvent[];
  let results: OpReport[];

  const open = async () => {
    journal = await CommandJournal.open(path.join(dir, 'journal.jsonl'));
    store = await BatchTaskStore.open(path.join(dir, 'batch-tasks.json'));
    watcher = new BatchWatcher(store, driver, simulatedConsoleLog(driver), systemClock, (e) => events.push(e), () => undefined, (t, g) => journal.taskLeaving(t, g), { pollMs: 50 });
    executor = new CommandExecutor(journal, driver, systemClock, { progress: () => undefined, result: (r) => results.push(r), log: () => undefined }, async () => undefined, 200, undefined, {
      consoleDir: path.join(dir, 'consoles'),
      batch: watcher,
      stateFileExists: (p) => Promise.resolve(driver.hasFile(p)),
    });
    watcher.start();
  };
  const close = async () => {
    await watcher.stop();
    await executor.drain();
    await journal.close();
    await store.close();
  };

  const outputs = () => events.filter((e): e is Extract<TaskEvent, { type: 'task-output' }> => e.type === 'task-output');
  const finishes = () => events.filter((e) => e.type === 'task-finished');
  const text = () => outputs().map((o) => o.data).join('');

  beforeEach(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'dpt-batch-'));
    driver = new SimulatedDriver({ clock: realSimClock, timings: { bootMs: 5, opOverheadMs: 1, diskWriteMiBps: 1e6, diskReadMiBps: 1e6 } });
    events = [];
    results = [];
    await open();
  });
  afterEach(async () => {
    await close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  it('streams the console in order and reports the guest powering off once, with its exit code and result', async () => {
    await executor.handle(cmd('op-run-0001', 'run-batch', 1, { taskId: TASK, spec: countTo(5) }));
    expect(results[0]).toMatchObject({ outcome: 'succeeded', result: { taskId: TASK, consoleLog: path.join(dir, 'consoles', `${DOMAIN}.log`) } });
    const [finished] = await until('task-finished', () => finishes().length > 0 && finishes());
    expect(finished).toMatchObject({ type: 'task-finished', taskId: TASK, generation: 1, exitCode: 0, result: 'count=5' });
    // Offsets are contiguous from zero and cover the whole console.
    let next = 0;
    for (const o of outputs()) {
      expect(o.offset).toBe(next);
      expect(o.generation).toBe(1);
      next += Buffer.byteLength(o.data, 'utf8');
    }
    expect(text()).toBe(driver.serialLog(path.join(dir, 'consoles', `${DOMAIN}.log`)));
    expect(text()).toContain('PROGRESS 5/5');
    // Later looks (events, polls) report nothing more.
    await new Promise((r) => setTimeout(r, 200));
    expect(finishes()).toHaveLength(1);
  });

  it('a checkpoint is not an end; the resume continues the output where it stopped and finishes once', async () => {
    await executor.handle(cmd('op-run-0002', 'run-batch', 1, { taskId: TASK, spec: countTo(15) }));
    await until('some progress', () => text().includes('PROGRESS 3/15'));
    const checkpoint = '/var/lib/deskpool/checkpoints/task-1.save';
    await executor.handle(cmd('op-ckpt-0002', 'checkpoint-batch', 1, { taskId: TASK, path: checkpoint }));
    expect(results.at(-1)).toMatchObject({ outcome: 'succeeded' });
    await new Promise((r) => setTimeout(r, 300));
    expect(finishes()).toEqual([]);
    const before = text();
    await executor.handle(cmd('op-resume-0002', 'run-batch', 2, { taskId: TASK, spec: countTo(15), restoreFrom: checkpoint }));
    expect(results.at(-1)).toMatchObject({ outcome: 'succeeded', result: { resumedFrom: checkpoint } });
    const [finished] = await until('task-finished', () => finishes().length > 0 && finishes(), 15_000);
    expect(finished).toMatchObject({ generation: 2, exitCode: 0, result: 'count=15' });
    // No restart from zero: every step printed once, in order, across the checkpoint.
    expect(text().startsWith(before)).toBe(true);
    const steps = [...text().matchAll(/^PROGRESS (\d+)\/15$/gm)].map((m) => Number(m[1]));
    expect(steps).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
    expect(outputs().some((o) => o.generation === 2)).toBe(true);
  });

  it('after a failed checkpoint the guest still runs, and its own power-off is its end', async () => {
    await executor.handle(cmd('op-run-0010', 'run-batch', 1, { taskId: TASK, spec: countTo(8) }));
    const undo = driver.injectFault({ operation: 'saveToFile', error: () => new Error('disk full while saving') });
    await executor.handle(cmd('op-ckpt-0010', 'checkpoint-batch', 1, { taskId: TASK, path: '/var/lib/deskpool/checkpoints/task-1.save' }));
    undo();
    expect(results.at(-1)).toMatchObject({ outcome: 'failed' });
    const [finished] = await until('task-finished', () => finishes().length > 0 && finishes(), 15_000);
    expect(finished).toMatchObject({ exitCode: 0, result: 'count=8' });
  });

  it('a checkpointed task is no longer read here: its status is left', async () => {
    await executor.handle(cmd('op-run-0011', 'run-batch', 1, { taskId: TASK, spec: countTo(50) }));
    await until('output', () => outputs().length > 0);
    await executor.handle(cmd('op-ckpt-0011', 'checkpoint-batch', 1, { taskId: TASK, path: '/var/lib/deskpool/checkpoints/task-1.save' }));
    await until('left', () => store.get(TASK)?.status === 'left');
    expect(finishes()).toEqual([]);
  });

  it('a resume whose checkpoint is not here fails instead of starting over', async () => {
    await executor.handle(cmd('op-resume-0003', 'run-batch', 2, { taskId: TASK, spec: countTo(5), restoreFrom: '/var/lib/deskpool/checkpoints/elsewhere.save' }));
    expect(results[0]).toMatchObject({ outcome: 'failed', error: { code: 'CHECKPOINT_MISSING' } });
    expect(await driver.state(DOMAIN)).toBe('missing');
  });

  it('an agent restart neither resends output from zero nor reports the end twice', async () => {
    await executor.handle(cmd('op-run-0004', 'run-batch', 1, { taskId: TASK, spec: countTo(12) }));
    await until('some progress', () => text().includes('PROGRESS 4/12'));
    await close();
    const sentBefore = outputs().reduce((n, o) => n + Buffer.byteLength(o.data, 'utf8'), 0);
    events = [];
    await open();
    const [finished] = await until('task-finished', () => finishes().length > 0 && finishes(), 15_000);
    expect(finished).toMatchObject({ exitCode: 0, result: 'count=12' });
    expect(outputs()[0]?.offset).toBe(sentBefore);
    await close();
    events = [];
    await open();
    await new Promise((r) => setTimeout(r, 200));
    expect(finishes()).toEqual([]);
  });

  it('a stop by the control plane is not an end; a crash is, without an exit code', async () => {
    await executor.handle(cmd('op-run-0005', 'run-batch', 1, { taskId: TASK, spec: countTo(100) }));
    await until('output', () => outputs().length > 0);
    await executor.handle(cmd('op-stop-0005', 'stop-batch', 1, { taskId: TASK, then: 'requeue' }));
    await new Promise((r) => setTimeout(r, 300));
    expect(finishes()).toEqual([]);

    await executor.handle(cmd('op-run-0006', 'run-batch', 2, { taskId: TASK, spec: countTo(100) }));
    expect(results.at(-1)).toMatchObject({ outcome: 'succeeded', result: { state: 'running' } });
    driver.crashGuest(DOMAIN);
    const [finished] = await until('task-finished', () => finishes().length > 0 && finishes());
    expect(finished).toMatchObject({ generation: 2, exitCode: null, reason: 'crashed' });
    expect(finished).not.toHaveProperty('result');
  });

  it('a guest exiting with an error reports its code and result', async () => {
    await executor.handle(cmd('op-run-0009', 'run-batch', 1, { taskId: TASK, spec: countTo(1000, false) }));
    await until('output', () => outputs().length > 0);
    driver.guestExit(DOMAIN, 3, 'disk full');
    const [finished] = await until('task-finished', () => finishes().length > 0 && finishes());
    expect(finished).toMatchObject({ exitCode: 3, result: 'disk full' });
    expect(finished).not.toHaveProperty('reason');
  });

  it('a missing batch domain without spec or guest fails with the driver\'s error; an invalid spec is refused naming the field', async () => {
    await executor.handle(cmd('op-run-0007', 'run-batch', 1, { taskId: TASK }));
    expect(results[0]).toMatchObject({ outcome: 'failed', error: { code: 'DOMAIN_NOT_FOUND' } });
    await executor.handle(cmd('op-run-0008', 'run-batch', 2, { taskId: TASK, spec: { ...countTo(5), vcpus: 0 } }));
    expect(results[1]).toMatchObject({ outcome: 'failed', error: { code: 'INVALID_SPEC' } });
    expect(results[1]?.error?.message).toContain('vcpus');
  });
});

describe('guest outcome and the standard guest script', () => {
  it('reads the result marker, or the older done line and RESULT line, or nothing', () => {
    expect(parseGuestOutcome('x\nDESKPOOL-RESULT exit=3 sum=42 ok\r\nDESKPOOL-GUEST DONE rc=3\n')).toEqual({ exitCode: 3, result: 'sum=42 ok' });
    expect(parseGuestOutcome('DESKPOOL-RESULT exit=0\n')).toEqual({ exitCode: 0 });
    expect(parseGuestOutcome('PROGRESS 2/2\nRESULT count=2\nDESKPOOL-GUEST DONE rc=0\n')).toEqual({ exitCode: 0, result: 'count=2' });
    expect(parseGuestOutcome('PROGRESS 1/2\n')).toEqual({ exitCode: null });
  });

  it('quotes the command and environment for the guest shell', () => {
    expect(standardGuestScript({ command: ['echo', "it's", '$HOME'], env: { A: 'x y' }, index: 7, vcpus: 1, memoryMiB: 128 })).toBe(
      "export A='x y'\nexport DESKPOOL_TASK_INDEX=7\n'echo' 'it'\\''s' '$HOME'\n",
    );
  });
});
