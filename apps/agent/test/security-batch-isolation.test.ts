// Batch VMs get no access to desktop disks, saved desktop states, checkpoints or the agent's
// state; saved state files are readable by root only.
import { mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SimulatedDriver, realSimClock } from '@deskpool/kvm-driver';
import type { CommandFrame } from '@deskpool/protocol';
import { afterAll, describe, expect, it } from 'vitest';
import { systemClock } from '../src/clock.js';
import { CommandExecutor, type OpReport } from '../src/commands/executor.js';
import { CommandJournal } from '../src/commands/journal.js';
import { batchSpecProblems, checkpointPathProblem } from '../src/commands/batch-isolation.js';
import { prepareStateFile, sealStateFile } from '../src/commands/state-files.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'dpt-isolation-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const dir = (name: string) => {
  const d = path.join(root, name);
  mkdirSync(d, { recursive: true });
  return d;
};
const images = dir('images');
const saved = dir('saved');
const checkpoints = dir('checkpoints');
const desktops = dir('desktops');
const agentState = dir('agent-state');
const aliceDisk = path.join(desktops, 'alice.qcow2');
writeFileSync(aliceDisk, '');
writeFileSync(path.join(images, 'render.qcow2'), '');
const policy = { imageDirs: [images], protectedDirs: [saved, checkpoints, agentState], desktopDisks: [aliceDisk] };
const disk = (p: string) => ({ disks: [{ path: p, format: 'qcow2' as const, target: 'vda', readonly: false }] });

describe('batch VM definitions', () => {
  it('accepts an image from the image store', async () => {
    expect(await batchSpecProblems(disk(path.join(images, 'render.qcow2')), policy)).toEqual([]);
  });

  it("refuses a desktop's disk, by path, through `..` or through a symlink in the image store", async () => {
    expect(await batchSpecProblems(disk(aliceDisk), policy)).toEqual([expect.stringMatching(/desktop's disk/)]);
    expect(await batchSpecProblems(disk(path.join(images, '..', 'desktops', 'alice.qcow2')), policy)).toEqual([expect.stringMatching(/desktop's disk/)]);
    const link = path.join(images, 'innocent.qcow2');
    symlinkSync(aliceDisk, link);
    expect(await batchSpecProblems(disk(link), policy)).toEqual([expect.stringMatching(/desktop's disk/)]);
  });

  it('refuses saved desktop states, checkpoints and the agent state as disks, kernels or initrds', async () => {
    expect(await batchSpecProblems(disk(path.join(saved, 'desk-alice.save')), policy)).toEqual([expect.stringMatching(/saved/)]);
    expect(await batchSpecProblems(disk(path.join(checkpoints, 'other-task.save')), policy)).toEqual([expect.stringMatching(/checkpoints/)]);
    expect(await batchSpecProblems({ disks: [], boot: { kernel: path.join(agentState, 'credential.json'), initrd: path.join(saved, 'x.save') } }, policy)).toHaveLength(2);
  });

  it('refuses any other disk outside the image store (desktop disks may live anywhere)', async () => {
    expect(await batchSpecProblems(disk('/srv/somewhere/bob.qcow2'), policy)).toEqual([expect.stringMatching(/outside the batch image store/)]);
    expect(await batchSpecProblems(disk('/dev/sda'), policy)).toEqual([expect.stringMatching(/outside the batch image store/)]);
  });

  it('resumes a task only from the checkpoint directory, never from a saved desktop state', async () => {
    expect(await checkpointPathProblem(path.join(checkpoints, 'task-1.save'), checkpoints)).toBeNull();
    expect(await checkpointPathProblem(path.join(saved, 'desk-alice.save'), checkpoints)).toMatch(/not in the checkpoint directory/);
    expect(await checkpointPathProblem(path.join(checkpoints, '..', 'saved', 'desk-alice.save'), checkpoints)).toMatch(/not in the checkpoint directory/);
  });
});

describe('saved state files', () => {
  const mode = (p: string) => statSync(p).mode & 0o777;

  it('makes the state directory 0700 (new, or tightened when it exists) and the file 0600', async () => {
    const file = path.join(root, 'state', 'saved', 'desk-alice.save');
    await prepareStateFile(file);
    expect(mode(path.dirname(file))).toBe(0o700);
    writeFileSync(file, 'memory image', { mode: 0o644 });
    await sealStateFile(file);
    expect(mode(file)).toBe(0o600);

    const loose = dir('loose');
    const { chmodSync } = await import('node:fs');
    chmodSync(loose, 0o755);
    await prepareStateFile(path.join(loose, 'x.save'));
    expect(mode(loose)).toBe(0o700);
  });

  it('leaves a missing file alone', async () => {
    await expect(sealStateFile(path.join(root, 'nothing-here.save'))).resolves.toBeUndefined();
  });
});

describe('the executor applies both', () => {
  // The simulated hypervisor, except that a save writes a real file the way a hypervisor with a
  // permissive umask would (0644): the agent's path handling is what is under test.
  class FileWritingDriver extends SimulatedDriver {
    override async saveToFile(name: string, file: string, opts?: Parameters<SimulatedDriver['saveToFile']>[2]) {
      const result = await super.saveToFile(name, file, opts);
      writeFileSync(file, 'memory image', { mode: 0o644 });
      return result;
    }
  }
  const cmd = (key: string, kind: CommandFrame['kind'], vmId: string, domainName: string, params: Record<string, unknown>): CommandFrame =>
    ({ type: 'command', idempotencyKey: key, kind, target: { vmId, domainName, generation: 1 }, params }) as CommandFrame;

  it('refuses a batch VM given a desktop disk or a saved desktop state, and seals saved states 0600 in a 0700 directory', async () => {
    const work = dir('executor');
    const driver = new FileWritingDriver({ clock: realSimClock, timings: { bootMs: 5, opOverheadMs: 1, diskWriteMiBps: 1e6, diskReadMiBps: 1e6 } });
    const journal = await CommandJournal.open(path.join(work, 'journal.jsonl'));
    const results: OpReport[] = [];
    const executor = new CommandExecutor(journal, driver, systemClock, { progress: () => undefined, result: (r) => results.push(r), log: () => undefined }, async () => undefined, 200, undefined, {
      consoleDir: path.join(work, 'consoles'),
      batchIsolation: { imageDirs: [images], protectedDirs: [saved, checkpoints, agentState] },
    });
    const bobDisk = path.join(desktops, 'bob.qcow2');
    const desktop = { name: 'dpt-bob', domainType: 'qemu', vcpus: 1, maxVcpus: 1, memoryMiB: 128, maxMemoryMiB: 128, disks: [{ path: bobDisk, target: 'vda' }], serialLogPath: path.join(work, 'bob.log') };
    await executor.handle(cmd('op-desk-start-1', 'start', 'vm-bob', 'dpt-bob', { spec: desktop }));
    expect(results.at(-1)).toMatchObject({ outcome: 'succeeded' });

    const batch = (diskPath: string) => ({ name: 'dp-task-t1', vcpus: 1, maxVcpus: 1, memoryMiB: 128, maxMemoryMiB: 128, disks: [{ path: diskPath, target: 'vda' }] });
    await executor.handle(cmd('op-batch-run-1', 'run-batch', 't1', 'dp-task-t1', { taskId: 't1', spec: batch(bobDisk) }));
    expect(results.at(-1)).toMatchObject({ outcome: 'failed', error: { code: 'BATCH_ISOLATION', message: expect.stringMatching(/desktop's disk/) } });
    await executor.handle(cmd('op-batch-run-2', 'run-batch', 't1', 'dp-task-t1', { taskId: 't1', spec: batch('/var/lib/deskpool/saved/dpt-bob.save') }));
    expect(results.at(-1)).toMatchObject({ outcome: 'failed', error: { code: 'BATCH_ISOLATION' } });
    await executor.handle(cmd('op-batch-run-3', 'run-batch', 't1', 'dp-task-t1', { taskId: 't1', restoreFrom: '/var/lib/deskpool/saved/dpt-bob.save' }));
    expect(results.at(-1)).toMatchObject({ outcome: 'failed', error: { code: 'BATCH_ISOLATION', message: expect.stringMatching(/checkpoint/) } });
    expect(await driver.state('dp-task-t1')).toBe('missing');
    await executor.handle(cmd('op-batch-run-4', 'run-batch', 't1', 'dp-task-t1', { taskId: 't1', spec: batch(path.join(images, 'render.qcow2')) }));
    expect(results.at(-1)).toMatchObject({ outcome: 'succeeded' });

    const stateFile = path.join(work, 'saved-states', 'dpt-bob.save');
    await executor.handle(cmd('op-desk-save-1', 'save-state', 'vm-bob', 'dpt-bob', { path: stateFile }));
    expect(results.at(-1)).toMatchObject({ outcome: 'succeeded' });
    expect(statSync(stateFile).mode & 0o777).toBe(0o600);
    expect(statSync(path.dirname(stateFile)).mode & 0o777).toBe(0o700);
    await executor.drain();
    await journal.close();
  });
});
