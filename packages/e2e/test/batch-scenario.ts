// The batch promise of issue 7, end to end with real parts (API with its agent gateway, a
// scheduler worker, Redis, PostgreSQL, two agents, two libvirt daemons and the tiny guest): a
// task counting to N in the standard batch guest is checkpointed midway when the PC's owner taps
// a key, the owner's desktop is restored without waiting for the task, and the task resumes on a
// second PC (a namespaced libvirt host, scripts/testhost.sh) and finishes with the right result,
// counting on from where it stopped instead of starting over. The test files choose the pool's
// storage (where the checkpoint lies) and what else to check once the task runs on B.
import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOffice, waitUntil, type CounterGuest, type Office, type OfficeHost } from '../src/index.js';

const execFileP = promisify(execFile);
const repo = fileURLToPath(new URL('../../../', import.meta.url));
/** Steps of the count; at 0.2 s a step (more on a loaded machine) the task runs a minute or more. */
export const N = 300;

/** Every "PROGRESS i/N" number in a log, in order. */
const progressOf = (log: string): number[] => [...log.matchAll(/^PROGRESS (\d+)\/\d+\r?$/gm)].map((m) => Number(m[1]));

export interface ResumedOnB {
  office: Office;
  pcA: OfficeHost;
  pcB: OfficeHost;
  task: { id: string; generation: number };
}

export interface BatchScenario {
  title: string;
  it: string;
  /** The namespaced second PC (fresh name and address per test file). */
  testhost: { name: string; addr: string };
  storageMode: 'shared' | 'local';
  /**
   * local: both agents move state files over SFTP, and B is enrolled under its SSH address
   * (move-state sends files to the host name).
   */
  moveStateOverSsh: boolean;
  /** Further checks once the task runs on B. */
  afterResume?: (r: ResumedOnB) => Promise<void>;
}

export function describeBatchCheckpointResume(s: BatchScenario): void {
  describe(s.title, { timeout: 600_000 }, () => {
    let office: Office;
    let pcA: OfficeHost;
    let pcB: OfficeHost;
    let desk: CounterGuest & { vmId: string };
    let testhostUp = false;
    let onA: { generation: number };
    let onB: { generation: number; id: string };
    let jobIdOf = '';
    let countAtSuspend = 0;
    const taskOf = () => office.prisma.batchTask.findFirstOrThrow({ where: { jobId: jobIdOf } });
    const logs = async (): Promise<string> => {
      const res = await fetch(`${office.apiUrl}/api/v1/jobs/${jobIdOf}/tasks/0/logs`, { headers: { authorization: `Bearer ${office.adminToken}` } });
      expect(res.status).toBe(200);
      return res.text();
    };

    beforeAll(async () => {
      const { stdout } = await execFileP('bash', [`${repo}scripts/testhost.sh`, 'up', s.testhost.name, s.testhost.addr]).catch((e: Error & { stderr?: string }) => {
        throw new Error(`scripts/testhost.sh up ${s.testhost.name} failed (run as root with libvirt installed): ${e.stderr ?? e.message}`);
      });
      testhostUp = true;
      const fact = (k: string): string => {
        const v = new RegExp(`^${k}=(.+)$`, 'm').exec(stdout)?.[1];
        if (!v) throw new Error(`testhost.sh printed no ${k}:\n${stdout}`);
        return v;
      };
      const libvirtUri = fact('libvirt_uri');
      const stateMover = s.moveStateOverSsh ? { stateMover: { privateKeyPath: fact('ssh_key'), knownHostsPath: fact('known_hosts') } } : {};
      // Batch runs outside office hours: today is made a day off (office tomorrow only). No batch on
      // a PC whose owner is present, so the checkpointed task must go elsewhere.
      const tomorrow = (new Date().getUTCDay() % 7) + 1;
      office = await startOffice({ pool: { batchAllowed: true, officeDays: [tomorrow], storageMode: s.storageMode, maxBatchPercentOwnerPresent: 0 } });
      office.startWorker();
      [pcA, pcB] = await Promise.all([
        office.addHost({ name: 'pc-a', ...stateMover }),
        office.addHost({ name: s.moveStateOverSsh ? s.testhost.addr : 'pc-b', libvirtUri, ...stateMover }),
      ]);
      // B takes no batch until the task runs on A.
      await office.api('POST', `/hosts/${pcB.hostId}/drain`);
      desk = await office.addDesktop(pcA, { tag: 'batch-owner' });
    }, 400_000);

    afterAll(async () => {
      // The batch VM's domain, checkpoint and console log are named by the scheduler and agent
      // (dp-task-<id>), not by a test prefix: remove them from both PCs.
      const tasks = office ? await office.prisma.batchTask.findMany({ select: { id: true } }).catch(() => []) : [];
      for (const t of tasks) {
        for (const pc of [pcA, pcB]) {
          await pc?.driver.destroy(`dp-task-${t.id}`).catch(() => undefined);
          await pc?.driver.undefine(`dp-task-${t.id}`).catch(() => undefined);
        }
        await rm(`/var/lib/deskpool/checkpoints/${t.id}.save`, { force: true });
        await rm(`/var/lib/deskpool/consoles/dp-task-${t.id}.log`, { force: true });
      }
      await office?.close();
      if (testhostUp) await execFileP('bash', [`${repo}scripts/testhost.sh`, 'down', s.testhost.name]).catch(() => undefined);
    });

    /** What the control plane knows of the job's task, for a failure message. */
    async function explain(jobId: string): Promise<string> {
      const task = await office.prisma.batchTask.findFirst({ where: { jobId } });
      const ops = task ? await office.prisma.operation.findMany({ where: { taskId: task.id }, orderBy: { createdAt: 'asc' } }) : [];
      const audit = await office.prisma.auditEvent.findMany({ orderBy: { at: 'desc' }, take: 25 });
      return JSON.stringify({
        task,
        operations: ops.map((o) => ({ kind: o.kind, host: o.hostId, generation: o.generation, status: o.status, error: o.error })),
        recentAudit: audit.map((a) => `${a.action} ${a.entityType}:${a.entityId} ${a.cause}`),
      }, null, 1);
    }

    it(s.it, async () => {
      try {
        await scenario();
      } catch (e) {
        throw new Error(`${(e as Error).message}\n${jobIdOf ? await explain(jobIdOf) : ''}`, { cause: e });
      }
    });

    async function scenario(): Promise<void> {
      // Evening: the owner leaves, the desktop is suspended, A is free for batch.
      await expect.poll(async () => (await office.prisma.host.findUniqueOrThrow({ where: { id: pcA.hostId } })).presenceState, { timeout: 30_000 }).toBe('idle');
      office.clock.advance(2 * 60_000);
      await office.timer('idleCheck');
      await office.waitForVm(desk.vmId, 'the desktop is suspended', (v) => v.state === 'SUSPENDED', 120_000);
      countAtSuspend = await desk.lastCount();

      const job = await office.api<{ id: string }>('POST', '/jobs', { name: 'count', command: ['dp-count-to', String(N)], cores: 1, memoryMiB: 128, checkpointable: true, retries: 0 });
      jobIdOf = job.id;
      onA = await waitUntil('the task runs on A', async () => {
        const t = await taskOf();
        return t.state === 'running' && t.hostId === pcA.hostId ? t : null;
      }, 120_000, 250);
      // Midway enough to tell a resume from a restart, early enough to leave work for B.
      await waitUntil('the task has counted to 15 (its console through job logs)', async () => Math.max(0, ...progressOf(await logs())) >= 15, 180_000, 500);
      await office.api('POST', `/hosts/${pcB.hostId}/undrain`);

      // Morning: the owner taps at A, and keeps working there (a key press every half second), so A
      // stays present and takes no batch work while the task looks for a PC.
      await pcA.tap();
      const typing = setInterval(() => void pcA.tap().catch(() => undefined), 500);
      try {
        await afterTap();
      } finally {
        clearInterval(typing);
      }
      await finishOnB();
    }

    async function afterTap(): Promise<void> {
      const restored = await office.waitForVm(desk.vmId, 'the desktop is running again on A', (v) => v.state === 'RUNNING' && v.currentHostId === pcA.hostId, 120_000);
      const taskWhenRestored = await taskOf();
      // The desktop did not wait for the task to finish (it has N steps to go on another PC).
      expect(['checkpointing', 'checkpointed', 'placed', 'running']).toContain(taskWhenRestored.state);
      expect(taskWhenRestored.finishedAt).toBeNull();
      expect(restored.state).toBe('RUNNING');
      expect(await desk.waitCountAbove(countAtSuspend + 1)).toBeGreaterThan(countAtSuspend + 1);

      onB = await waitUntil('the task resumed on B', async () => {
        const t = await taskOf();
        // What the placement timer's repeatable job does in production (the harness fires timers by hand).
        if (t.state === 'checkpointed') await office.timer('placement');
        return t.hostId === pcB.hostId && (t.state === 'running' || t.state === 'succeeded') ? t : null;
      }, 180_000, 250);
      expect(onB.generation).toBeGreaterThan(onA.generation);
      await s.afterResume?.({ office, pcA, pcB, task: onB });
    }

    async function finishOnB(): Promise<void> {
      const finished = await waitUntil('the task succeeded', async () => {
        const t = await taskOf();
        if (t.state === 'failed') throw new Error(`the task failed: ${JSON.stringify(t)}`);
        return t.state === 'succeeded' ? t : null;
      }, 300_000, 500);

      // Counting went on from where it stopped: what B printed starts above 1 and every step
      // 1..N appears in order, none twice (no restart from zero).
      const chunksOnB = await office.prisma.taskOutputChunk.findMany({ where: { taskId: finished.id, generation: onB.generation }, orderBy: { offset: 'asc' } });
      const firstOnB = progressOf(chunksOnB.map((c) => c.data).join(''))[0];
      expect(firstOnB).toBeGreaterThan(1);
      const all = progressOf(await logs());
      expect(all).toEqual(Array.from({ length: N }, (_, i) => i + 1));

      const results = await office.api<{ tasks: { state: string; exitCode: number | null; result: string | null; resultGeneration: number | null }[] }>('GET', `/jobs/${jobIdOf}/results`);
      // Reported by B's agent: the result belongs to the generation that ran on B.
      expect(results.tasks[0]).toMatchObject({ state: 'succeeded', exitCode: 0, result: `count=${N}`, resultGeneration: onB.generation });
      const audit = await office.prisma.auditEvent.findMany({ where: { entityId: finished.id }, orderBy: { at: 'asc' } });
      expect(audit.map((a) => a.action)).toEqual(expect.arrayContaining([expect.stringMatching(/checkpoint/i)]));
    }
  });
}
