// A batch task in the real tiny guest under QEMU (qemu:///system): run-batch boots the standard
// guest with the task's command, the watcher streams its console and reports its end with the
// result the guest printed. One guest, counting to a small N.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LibvirtDriver, ensureGuestImage } from '@deskpool/kvm-driver';
import type { CommandFrame } from '@deskpool/protocol';
import { systemClock } from '../src/clock.js';
import { fileConsoleLog } from '../src/batch/console-log.js';
import { BatchTaskStore } from '../src/batch/task-store.js';
import { BatchWatcher, type TaskEvent } from '../src/batch/watcher.js';
import { CommandExecutor, type OpReport } from '../src/commands/executor.js';
import { CommandJournal } from '../src/commands/journal.js';

const driver = new LibvirtDriver({ uri: 'qemu:///system' });
const taskId = `t-${randomUUID().slice(0, 8)}`;
const domain = `dpt-task-${taskId}`;

describe('batch task in the real tiny guest', () => {
  let dir: string;
  let journal: CommandJournal;
  let store: BatchTaskStore;
  let watcher: BatchWatcher;
  let executor: CommandExecutor;
  const events: TaskEvent[] = [];
  const results: OpReport[] = [];

  beforeAll(async () => {
    await ensureGuestImage();
    dir = mkdtempSync(path.join(os.tmpdir(), 'dpt-batch-libvirt-'));
    journal = await CommandJournal.open(path.join(dir, 'journal.jsonl'));
    store = await BatchTaskStore.open(path.join(dir, 'batch-tasks.json'));
    watcher = new BatchWatcher(store, driver, fileConsoleLog, systemClock, (e) => events.push(e), () => undefined, (t, g) => journal.taskLeaving(t, g), { pollMs: 1_000 });
    executor = new CommandExecutor(journal, driver, systemClock, { progress: () => undefined, result: (r) => results.push(r), log: () => undefined }, async () => undefined, 200, undefined, {
      consoleDir: path.join(dir, 'consoles'),
      batch: watcher,
    });
    watcher.start();
  }, 300_000);

  afterAll(async () => {
    await watcher?.stop();
    await driver.destroy(domain).catch(() => undefined);
    await driver.undefine(domain).catch(() => undefined);
    await journal?.close().catch(() => undefined);
    await store?.close().catch(() => undefined);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('defines the standard guest from the command, streams its console and reports exit 0 with count=N once', async () => {
    const run: CommandFrame = {
      type: 'command',
      idempotencyKey: 'op-lv-batch-01',
      kind: 'run-batch',
      target: { vmId: taskId, domainName: domain, generation: 1 },
      params: { taskId, guest: { command: ['dp-count-to', '5', '100000'], env: {}, index: 2, vcpus: 1, memoryMiB: 128 } },
    };
    await executor.handle(run);
    expect(results[0]).toMatchObject({ outcome: 'succeeded', result: { taskId, state: 'running' } });

    const deadline = Date.now() + 120_000;
    while (!events.some((e) => e.type === 'task-finished') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
    const finished = events.filter((e) => e.type === 'task-finished');
    expect(finished).toEqual([expect.objectContaining({ taskId, generation: 1, exitCode: 0, result: 'count=5' })]);
    expect(await driver.state(domain)).toBe('shutoff');

    const outputs = events.filter((e): e is Extract<TaskEvent, { type: 'task-output' }> => e.type === 'task-output');
    const text = outputs.map((o) => o.data).join('');
    expect(text).toBe(readFileSync(path.join(dir, 'consoles', `${domain}.log`), 'utf8'));
    expect(text).toContain('DESKPOOL-GUEST READY');
    expect([...text.matchAll(/^PROGRESS (\d+)\/5\r?$/gm)].map((m) => Number(m[1]))).toEqual([1, 2, 3, 4, 5]);
    expect(text).toMatch(/^DESKPOOL-RESULT exit=0 count=5\r?$/m);
    expect(outputs[0]?.offset).toBe(0);
    await new Promise((r) => setTimeout(r, 1_500));
    expect(events.filter((e) => e.type === 'task-finished')).toHaveLength(1);
  }, 180_000);

  it('a checkpoint mid-count is not an end; the resume from the checkpoint file finishes without starting over', async () => {
    const resumedId = `${taskId}-r`;
    const resumedDomain = `${domain}-r`;
    const checkpoint = `/var/lib/deskpool/checkpoints/${resumedId}.save`;
    const frame = (key: string, kind: CommandFrame['kind'], generation: number, params: Record<string, unknown>): CommandFrame =>
      ({ type: 'command', idempotencyKey: key, kind, target: { vmId: resumedId, domainName: resumedDomain, generation }, params }) as CommandFrame;
    const mine = () => events.filter((e) => e.taskId === resumedId);
    const text = () => mine().map((e) => (e.type === 'task-output' ? e.data : '')).join('');
    try {
      await executor.handle(frame('op-lv-batch-11', 'run-batch', 1, { taskId: resumedId, guest: { command: ['dp-count-to', '25', '200000'], env: {}, index: 0, vcpus: 1, memoryMiB: 128 } }));
      const deadline = Date.now() + 120_000;
      while (!/^PROGRESS 6\/25/m.test(text()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      await executor.handle(frame('op-lv-batch-12', 'checkpoint-batch', 1, { taskId: resumedId, path: checkpoint }));
      expect(results.at(-1)).toMatchObject({ idempotencyKey: 'op-lv-batch-12', outcome: 'succeeded' });
      await new Promise((r) => setTimeout(r, 2_500));
      expect(mine().filter((e) => e.type === 'task-finished')).toEqual([]);
      const stepsBefore = [...text().matchAll(/^PROGRESS (\d+)\/25\r?$/gm)].length;

      await executor.handle(frame('op-lv-batch-13', 'run-batch', 2, { taskId: resumedId, restoreFrom: checkpoint }));
      expect(results.at(-1)).toMatchObject({ idempotencyKey: 'op-lv-batch-13', outcome: 'succeeded', result: { resumedFrom: checkpoint } });
      const until = Date.now() + 120_000;
      while (!mine().some((e) => e.type === 'task-finished') && Date.now() < until) await new Promise((r) => setTimeout(r, 250));
      expect(mine().filter((e) => e.type === 'task-finished')).toEqual([expect.objectContaining({ generation: 2, exitCode: 0, result: 'count=25' })]);
      const steps = [...text().matchAll(/^PROGRESS (\d+)\/25\r?$/gm)].map((m) => Number(m[1]));
      expect(stepsBefore).toBeGreaterThanOrEqual(6);
      expect(steps).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    } finally {
      await driver.destroy(resumedDomain).catch(() => undefined);
      await driver.undefine(resumedDomain).catch(() => undefined);
      rmSync(checkpoint, { force: true });
    }
  }, 300_000);
});
