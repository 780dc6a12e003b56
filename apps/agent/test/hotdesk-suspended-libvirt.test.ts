// Hot-desking a desktop that is suspended (a libvirt managed save) in a local-storage pool,
// through two agents' executors on real libvirt: the home PC's move-state sends libvirt's
// managed-save image to the other PC and undefines the desktop at home; the other PC's restore
// brings it back from the moved file, defines it there, and a later suspend there works. This
// machine's libvirtd is the home PC; a namespaced host (scripts/testhost.sh) is the other one.
// The saved-state directory of the other PC is a tmpfs in its own mount namespace, so the moved
// file exists there only, as on a second machine's disk.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LibvirtDriver, counterValues, ensureGuestImage, guestDomainSpec, readSerialLog, waitForSerial } from '@deskpool/kvm-driver';
import type { CommandFrame } from '@deskpool/protocol';
import { systemClock } from '../src/clock.js';
import { CommandExecutor, type ExecutorOptions, type OpReport } from '../src/commands/executor.js';
import { CommandJournal } from '../src/commands/journal.js';
import { sftpStateMover, type StateMover } from '../src/commands/state-mover.js';

const execFileP = promisify(execFile);
const testhostScript = fileURLToPath(new URL('../../../scripts/testhost.sh', import.meta.url));
const HOST = 'dpthdsus';
const ADDR = '10.77.88.2';
// Where the scheduler names a desktop's saved state (savedStatePathOf in the scheduler's mapping).
const SAVED_DIR = '/var/lib/deskpool/saved';
// Where the scheduler names a task's checkpoint (checkpointPathOf).
const CHECKPOINT_DIR = '/var/lib/deskpool/checkpoints';
const taskId = `t-${randomUUID().slice(0, 8)}`;
const taskDomain = `dp-task-${taskId}`;
const checkpointPath = `${CHECKPOINT_DIR}/${taskId}.save`;

const vmId = `vm-${randomUUID().slice(0, 8)}`;
const domain = `dpt-hds-${vmId}`;
const statePath = `${SAVED_DIR}/${domain}.save`;

interface Side {
  driver: LibvirtDriver;
  journal: CommandJournal;
  executor: CommandExecutor;
  results: OpReport[];
}

async function side(dir: string, uri: string, label: string, mover: StateMover | undefined, options: ExecutorOptions = {}): Promise<Side> {
  const driver = new LibvirtDriver({ uri });
  const journal = await CommandJournal.open(path.join(dir, `${label}-journal.jsonl`));
  const results: OpReport[] = [];
  const events = { progress: () => undefined, result: (r: OpReport) => results.push(r), log: () => undefined };
  const executor = new CommandExecutor(journal, driver, systemClock, events, async () => undefined, 200, mover, { consoleDir: path.join(dir, 'consoles'), ...options });
  return { driver, journal, executor, results };
}

const command = (key: string, kind: CommandFrame['kind'], generation: number, params: Record<string, unknown>): CommandFrame =>
  ({ type: 'command', idempotencyKey: key, kind, target: { vmId, domainName: domain, generation }, params }) as CommandFrame;

const lastCount = async (serialPath: string): Promise<number> => Math.max(0, ...counterValues(await readSerialLog(serialPath)));

describe('hot-desking a suspended desktop between two real libvirt hosts with local storage', () => {
  let dir: string;
  let home: Side;
  let away: Side;
  let serialPath: string;
  let mountNs: string;

  beforeAll(async () => {
    await ensureGuestImage();
    const { stdout } = await execFileP('bash', [testhostScript, 'up', HOST, ADDR]).catch((e: Error & { stderr?: string }) => {
      throw new Error(`scripts/testhost.sh up ${HOST} failed (run the tests as root with libvirt installed): ${e.stderr ?? e.message}`);
    });
    const fact = (k: string): string => {
      const v = new RegExp(`^${k}=(.*)$`, 'm').exec(stdout)?.[1];
      if (!v) throw new Error(`testhost.sh printed no ${k}`);
      return v;
    };
    mountNs = fact('mount_ns');
    // The other PC's own disk for saved states (the mount point is made here; nothing is removed).
    mkdirSync(SAVED_DIR, { recursive: true, mode: 0o700 });
    mkdirSync(CHECKPOINT_DIR, { recursive: true, mode: 0o700 });
    for (const d of [SAVED_DIR, CHECKPOINT_DIR]) await execFileP('nsenter', [`--mount=${mountNs}`, 'mount', '-t', 'tmpfs', '-o', 'size=512m,mode=0700', 'dpt-hds-state', d]);
    dir = mkdtempSync(path.join(os.tmpdir(), 'dpt-hds-'));
    serialPath = path.join(dir, `${domain}.log`);
    const mover = sftpStateMover({ username: 'root', port: 22, privateKeyPath: fact('ssh_key'), knownHostsPath: fact('known_hosts'), insecureSkipHostKeyCheck: false });
    home = await side(dir, 'qemu:///system', 'home', mover);
    // The other PC's agent sees its own filesystem: files are looked up in its mount namespace.
    away = await side(dir, fact('libvirt_uri'), 'away', undefined, {
      stateFileExists: (file) => execFileP('nsenter', [`--mount=${mountNs}`, 'test', '-s', file]).then(() => true, () => false),
    });
    const spec = guestDomainSpec({ name: domain, serialLogPath: serialPath, memoryMiB: 128, task: { mode: 'counter' } });
    await home.executor.handle(command('op-hds-start-01', 'start', 1, { spec: { ...spec, domainType: undefined } }));
    expect(home.results[0]).toMatchObject({ outcome: 'succeeded' });
    await waitForSerial(serialPath, /COUNT 3/, { timeoutMs: 120_000 });
    await home.executor.handle(command('op-hds-suspend-01', 'suspend', 2, {}));
    expect(home.results[1]).toMatchObject({ outcome: 'succeeded', result: { state: 'saved' } });
  }, 400_000);

  afterAll(async () => {
    for (const s of [home, away]) {
      if (!s) continue;
      for (const name of [domain, taskDomain]) {
        await s.driver.destroy(name).catch(() => undefined);
        await s.driver.undefine(name).catch(() => undefined);
      }
      await s.journal.close().catch(() => undefined);
    }
    await rm(checkpointPath, { force: true });
    for (const d of [SAVED_DIR, CHECKPOINT_DIR]) if (mountNs) await execFileP('nsenter', [`--mount=${mountNs}`, 'umount', '-l', d]).catch(() => undefined);
    await execFileP('bash', [testhostScript, 'down', HOST]).catch(() => undefined);
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  it('moves the managed save to the other PC and leaves the desktop defined only there', async () => {
    const move = command('op-hds-move-01', 'move-state', 3, { path: statePath, targetHost: ADDR, targetPath: statePath });
    await home.executor.handle(move);
    const moved = home.results.at(-1);
    expect(moved).toMatchObject({ outcome: 'succeeded', result: { changed: true, movedFrom: 'managed-save', undefinedHere: true, targetPath: statePath } });
    expect(moved?.result?.bytes).toBeGreaterThan(1024 * 1024);
    expect(await home.driver.state(domain)).toBe('missing');
    expect(await away.driver.state(domain)).toBe('missing');
    // The moved file is on the other PC's disk only.
    await expect(execFileP('nsenter', [`--mount=${mountNs}`, 'test', '-s', statePath])).resolves.toBeDefined();
    await expect(execFileP('test', ['-e', statePath])).rejects.toThrow();

    await home.executor.handle(move);
    expect(home.results.at(-1)).toMatchObject({ outcome: 'succeeded', replayed: true });
    // A new request finds nothing left to move here, and says so.
    await home.executor.handle(command('op-hds-move-02', 'move-state', 3, { path: statePath, targetHost: ADDR, targetPath: statePath }));
    expect(home.results.at(-1)).toMatchObject({ outcome: 'failed', error: { code: 'STATE_MISSING' } });
  }, 300_000);

  it('restores it on the other PC from the moved file, the counter going on, and it can be suspended there again', async () => {
    const before = await lastCount(serialPath);
    await away.executor.handle(command('op-hds-restore-01', 'restore', 3, { statePath }));
    expect(away.results.at(-1)).toMatchObject({ outcome: 'succeeded', result: { changed: true, state: 'running', resumedFrom: statePath, definedHere: true } });
    const log = await waitForSerial(serialPath, (l) => Math.max(0, ...counterValues(l)) >= before + 2, { timeoutMs: 120_000 });
    const values = counterValues(log);
    expect(values[values.lastIndexOf(before) + 1]).toBe(before + 1);
    expect(await home.driver.state(domain)).toBe('missing');

    // Defined there now: the next idle suspend is a managed save on that PC, and it comes back.
    await away.executor.handle(command('op-hds-suspend-02', 'suspend', 4, {}));
    expect(away.results.at(-1)).toMatchObject({ outcome: 'succeeded', result: { state: 'saved' } });
    await away.executor.handle(command('op-hds-restore-02', 'restore', 5, { statePath }));
    expect(away.results.at(-1)).toMatchObject({ outcome: 'succeeded', result: { changed: true, state: 'running' } });
  }, 300_000);

  it('fails a restore with STATE_MISSING where there is neither a managed save nor the file', async () => {
    await home.executor.handle(command('op-hds-restore-03', 'restore', 6, { statePath }));
    expect(home.results.at(-1)).toMatchObject({ outcome: 'failed', error: { code: 'STATE_MISSING' } });
    expect(await home.driver.state(domain)).toBe('missing');
  });

  it('moves a batch checkpoint to the other PC, where the task resumes from it and counts on (local-storage checkpoints)', async () => {
    const taskCommand = (key: string, kind: CommandFrame['kind'], generation: number, params: Record<string, unknown>): CommandFrame =>
      ({ type: 'command', idempotencyKey: key, kind, target: { vmId: taskId, domainName: taskDomain, generation }, params }) as CommandFrame;
    const taskSerial = path.join(dir, `${taskDomain}.log`);
    // The desktop is done with: its CPU goes to the task's guest on this loaded machine.
    await away.driver.destroy(domain).catch(() => undefined);
    // The task's VM runs at home (booted directly: how it was first placed does not matter here).
    await home.driver.define(guestDomainSpec({ name: taskDomain, serialLogPath: taskSerial, memoryMiB: 128, task: { mode: 'counter' } }));
    await home.driver.start(taskDomain);
    await waitForSerial(taskSerial, /COUNT 3/, { timeoutMs: 240_000 });
    await home.executor.handle(taskCommand('op-hds-ckpt-01', 'checkpoint-batch', 2, { taskId, path: checkpointPath }));
    expect(home.results.at(-1)).toMatchObject({ outcome: 'succeeded', result: { taskId } });
    const before = await lastCount(taskSerial);

    // What the planner's moveCheckpoint becomes: a move-state of the checkpoint file.
    await home.executor.handle(taskCommand('op-hds-ckmove-01', 'move-state', 3, { path: checkpointPath, targetHost: ADDR, targetPath: checkpointPath }));
    expect(home.results.at(-1)).toMatchObject({ outcome: 'succeeded', result: { changed: true, targetPath: checkpointPath } });
    await expect(execFileP('nsenter', [`--mount=${mountNs}`, 'test', '-s', checkpointPath])).resolves.toBeDefined();

    await away.executor.handle(taskCommand('op-hds-resume-01', 'run-batch', 3, { taskId, restoreFrom: checkpointPath }));
    expect(away.results.at(-1)).toMatchObject({ outcome: 'succeeded', result: { state: 'running', resumedFrom: checkpointPath } });
    const values = counterValues(await waitForSerial(taskSerial, (l) => Math.max(0, ...counterValues(l)) >= before + 2, { timeoutMs: 120_000 }));
    expect(values[values.lastIndexOf(before) + 1]).toBe(before + 1);
    expect(await home.driver.state(taskDomain)).not.toBe('running');
  }, 600_000);
});
