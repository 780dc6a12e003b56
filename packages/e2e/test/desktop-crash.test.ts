// A scheduler worker process killed with SIGKILL in the middle of a tap's restore: once another
// worker process takes over, the restore completes, and exactly once (one operation, one command
// carried out by the agent, one start in libvirt), with the guest's state intact.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildWorker, startOffice, waitUntil, watchLifecycle, type CounterGuest, type LifecycleWatch, type Office, type OfficeHost } from '../src/index.js';

describe('a scheduler worker killed mid-restore', { timeout: 240_000 }, () => {
  let office: Office;
  let pc: OfficeHost;
  let desk: CounterGuest & { vmId: string };
  let watch: LifecycleWatch;

  beforeAll(async () => {
    buildWorker();
    office = await startOffice();
    pc = await office.addHost({ name: 'pc-crash' });
    desk = await office.addDesktop(pc, { tag: 'crash' });
    watch = await watchLifecycle('qemu:///system', desk.domain);
    // Evening, with an in-process worker on the office clock: the desktop is suspended.
    const evening = office.startWorker();
    await waitUntil('the PC is idle', async () => (await office.prisma.host.findUniqueOrThrow({ where: { id: pc.hostId } })).presenceState === 'idle', 20_000);
    office.clock.advance(2 * 60_000);
    await office.timer('idleCheck');
    await office.waitForVm(desk.vmId, 'suspended', (v) => v.state === 'SUSPENDED');
    await waitUntil('the suspend has settled', async () => (await office.prisma.operation.count({ where: { vmId: desk.vmId, settledAt: null } })) === 0);
    await evening.close();
  }, 600_000);

  afterAll(async () => {
    watch?.close();
    await office?.close();
  });

  it('completes the restore exactly once after another worker takes over', async () => {
    const countWhenSuspended = await desk.lastCount();
    const first = office.spawnWorker({ LOG_LEVEL: 'info' });
    await waitUntil('the first worker process is listening', () => first.output().includes('scheduler worker started'), 60_000);

    await pc.tap();
    // Kill it the moment the restore shows up: committed, and maybe not yet published.
    const restore = await waitUntil('the restore is planned', () => office.prisma.operation.findFirst({ where: { vmId: desk.vmId, kind: 'restore' } }), 60_000, 2);
    await first.kill('SIGKILL');
    const statusAtKill = restore.status;

    const second = office.spawnWorker();
    // A restore left unpublished is sent again by the redispatch timer (or by the re-run event).
    const redispatch = setInterval(() => void office.timer('redispatch').catch(() => undefined), 2000);
    try {
      await office.waitForVm(desk.vmId, `running again (the restore was ${statusAtKill} when the worker died)`, (v) => v.state === 'RUNNING' && v.currentHostId === pc.hostId, 180_000);
      await waitUntil('every operation has settled', async () => (await office.prisma.operation.count({ where: { vmId: desk.vmId, settledAt: null } })) === 0, 120_000);
    } catch (err) {
      const journal = await readFile(path.join(pc.stateDir, 'journal.jsonl'), 'utf8').catch(() => '(no journal)');
      throw new Error(`${(err as Error).message}\nagent journal:\n${journal}\nsecond worker:\n${second.output().slice(-3000)}\nfirst worker:\n${first.output().slice(-3000)}`, { cause: err });
    } finally {
      clearInterval(redispatch);
    }
    expect(await pc.driver.state(desk.domain)).toBe('running');
    expect(await office.prisma.operation.count({ where: { vmId: desk.vmId, kind: 'restore' } })).toBe(1);
    const begins = (await readFile(path.join(pc.stateDir, 'journal.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { t: string; kind?: string; domainName?: string })
      .filter((l) => l.t === 'begin' && l.kind === 'restore' && l.domainName === desk.domain);
    expect(begins).toHaveLength(1);
    expect(watch.lines.filter((l) => /Started/.test(l))).toHaveLength(1);
    expect(await desk.waitCountAbove(countWhenSuspended + 1)).toBeGreaterThan(countWhenSuspended + 1);
    expect(await desk.neverRebooted()).toBe(true);
    await second.kill('SIGTERM');
  });
});
