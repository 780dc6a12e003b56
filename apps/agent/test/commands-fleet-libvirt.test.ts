// stop-batch and delete-state through the real LibvirtDriver (the tiny test guest under QEMU
// emulation on qemu:///system). Reconcile is not run here on purpose: it stops every live domain
// the control plane did not list, and this libvirtd is shared with other test runs.
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LibvirtDriver, ensureGuestImage, guestDomainSpec } from '@deskpool/kvm-driver';
import type { CommandFrame } from '@deskpool/protocol';
import { systemClock } from '../src/clock.js';
import { CommandExecutor, type OpReport } from '../src/commands/executor.js';
import { CommandJournal } from '../src/commands/journal.js';

const driver = new LibvirtDriver({ uri: 'qemu:///system' });
const taskDomain = `dpt-task-${randomUUID().slice(0, 8)}`;

describe('fleet commands on real libvirt', () => {
  let dir: string;
  let journal: CommandJournal;
  const results: OpReport[] = [];
  let executor: CommandExecutor;
  const resultOf = (key: string) => results.find((r) => r.idempotencyKey === key);

  beforeAll(async () => {
    await ensureGuestImage();
    dir = mkdtempSync(path.join(os.tmpdir(), 'dpt-fleet-libvirt-'));
    journal = await CommandJournal.open(path.join(dir, 'journal.jsonl'));
    executor = new CommandExecutor(journal, driver, systemClock, { progress: () => undefined, result: (r) => results.push(r), log: () => undefined }, async () => undefined, 200);
    await driver.define(guestDomainSpec({ name: taskDomain, serialLogPath: path.join(dir, 'serial.log'), task: { mode: 'counter' } }));
    await driver.start(taskDomain);
  }, 300_000);

  afterAll(async () => {
    await driver.destroy(taskDomain).catch(() => undefined);
    await driver.undefine(taskDomain).catch(() => undefined);
    await journal?.close().catch(() => undefined);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('stop-batch destroys the running batch domain; a second stop changes nothing', async () => {
    expect(await driver.state(taskDomain)).toBe('running');
    const stop = (key: string) =>
      executor.handle({ type: 'command', idempotencyKey: key, kind: 'stop-batch', target: { vmId: 't-lv', domainName: taskDomain, generation: 1 }, params: { taskId: 't-lv', then: 'requeue' } } as CommandFrame);
    await stop('op-lv-stop-01');
    expect(resultOf('op-lv-stop-01')).toMatchObject({ outcome: 'succeeded', result: { changed: true } });
    expect(await driver.state(taskDomain)).toBe('shutoff');
    await stop('op-lv-stop-02');
    expect(resultOf('op-lv-stop-02')).toMatchObject({ outcome: 'succeeded', result: { changed: false } });
  });

  it('delete-state removes the file of a domain that is shut off here, then finds it gone', async () => {
    const file = path.join(dir, 'state.save');
    writeFileSync(file, 'saved memory');
    const del = (key: string) =>
      executor.handle({ type: 'command', idempotencyKey: key, kind: 'delete-state', target: { vmId: 't-lv', domainName: taskDomain, generation: 1 }, params: { path: file } } as CommandFrame);
    await del('op-lv-delete-01');
    expect(resultOf('op-lv-delete-01')).toMatchObject({ outcome: 'succeeded', result: { changed: true } });
    expect(existsSync(file)).toBe(false);
    await del('op-lv-delete-02');
    expect(resultOf('op-lv-delete-02')).toMatchObject({ outcome: 'succeeded', result: { changed: false } });
  });
});
