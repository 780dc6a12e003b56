// Hot-desking between two real libvirt hosts through two agents' executors: the source PC's
// migrate-out moves a running desktop live while the target PC's migrate-in waits for it to
// arrive. A failed migration leaves it where it was, never on both. This machine's libvirtd is
// the source; a namespaced host (scripts/testhost.sh, own name and address) is the target.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LibvirtDriver, counterValues, ensureGuestImage, guestDomainSpec, readSerialLog, waitForSerial } from '@deskpool/kvm-driver';
import type { CommandFrame } from '@deskpool/protocol';
import { systemClock } from '../src/clock.js';
import { CommandExecutor, type OpReport } from '../src/commands/executor.js';
import { CommandJournal } from '../src/commands/journal.js';

const execFileP = promisify(execFile);
const testhostScript = fileURLToPath(new URL('../../../scripts/testhost.sh', import.meta.url));
const HOST = 'dptmigpair';
const ADDR = '10.77.61.2';

const vmId = `vm-${randomUUID().slice(0, 8)}`;
const domain = `dpt-desk-${vmId}`;

interface Side {
  driver: LibvirtDriver;
  journal: CommandJournal;
  executor: CommandExecutor;
  results: OpReport[];
}

async function side(dir: string, uri: string, label: string): Promise<Side> {
  const driver = new LibvirtDriver({ uri });
  const journal = await CommandJournal.open(path.join(dir, `${label}-journal.jsonl`));
  const results: OpReport[] = [];
  const executor = new CommandExecutor(journal, driver, systemClock, { progress: () => undefined, result: (r) => results.push(r), log: () => undefined }, async () => undefined, 200, undefined, {
    consoleDir: path.join(dir, 'consoles'),
    arrivalPollMs: 200,
  });
  return { driver, journal, executor, results };
}

const command = (key: string, kind: CommandFrame['kind'], generation: number, params: Record<string, unknown>): CommandFrame =>
  ({ type: 'command', idempotencyKey: key, kind, target: { vmId, domainName: domain, generation }, params }) as CommandFrame;

describe('live migration as a migrate-out/migrate-in pair on real libvirt', () => {
  let dir: string;
  let a: Side;
  let b: Side;
  let targetUri: string;
  let serialPath: string;

  beforeAll(async () => {
    await ensureGuestImage();
    const { stdout } = await execFileP('bash', [testhostScript, 'up', HOST, ADDR]).catch((e: Error & { stderr?: string }) => {
      throw new Error(`scripts/testhost.sh up ${HOST} failed (run the tests as root with libvirt installed): ${e.stderr ?? e.message}`);
    });
    targetUri = /^libvirt_uri=(.*)$/m.exec(stdout)?.[1] ?? `qemu+tcp://${ADDR}/system`;
    // Serial logs outside the private libvirt directories: both hosts see the same path.
    dir = mkdtempSync(path.join(os.tmpdir(), 'dpt-migpair-'));
    serialPath = path.join(dir, `${domain}.log`);
    a = await side(dir, 'qemu:///system', 'a');
    b = await side(dir, targetUri, 'b');
    // The desktop is not defined anywhere yet: start carries its spec, as the scheduler sends it.
    const spec = guestDomainSpec({ name: domain, serialLogPath: serialPath, task: { mode: 'counter' } });
    await a.executor.handle(command('op-mp-start-01', 'start', 1, { spec: { ...spec, domainType: undefined } }));
    expect(a.results[0]).toMatchObject({ outcome: 'succeeded' });
    await waitForSerial(serialPath, /COUNT 3/, { timeoutMs: 120_000 });
  }, 300_000);

  afterAll(async () => {
    for (const s of [a, b]) {
      if (!s) continue;
      await s.driver.destroy(domain).catch(() => undefined);
      await s.driver.undefine(domain).catch(() => undefined);
      await s.journal.close().catch(() => undefined);
    }
    await execFileP('bash', [testhostScript, 'down', HOST]).catch(() => undefined);
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  it('moves the running desktop to the target: running there only, its counter unbroken', async () => {
    const into = b.executor.handle(command('op-mp-in-0001', 'migrate-in', 2, { sourceHostId: 'pc-a', migrateOutKey: 'op-mp-in-0001.out', arrivalTimeoutSeconds: 240 }));
    const out = a.executor.handle(command('op-mp-in-0001.out', 'migrate-out', 2, { targetUri, live: true, migrationUri: `tcp://${ADDR}` }));
    await Promise.all([into, out]);
    expect(a.results.at(-1)).toMatchObject({ idempotencyKey: 'op-mp-in-0001.out', outcome: 'succeeded' });
    expect(b.results.at(-1)).toMatchObject({ idempotencyKey: 'op-mp-in-0001', outcome: 'succeeded', result: { state: 'running' } });
    expect(await b.driver.state(domain)).toBe('running');
    expect(await a.driver.state(domain)).toBe('missing');
    const before = Math.max(...counterValues(await readSerialLog(serialPath)));
    await waitForSerial(serialPath, (log) => Math.max(...counterValues(log)) > before + 2, { timeoutMs: 60_000 });
    const values = counterValues(await readSerialLog(serialPath));
    values.forEach((v, i) => {
      if (i > 0) expect(v).toBe((values[i - 1] ?? 0) + 1);
    });
  }, 300_000);

  it('a migration that cannot reach its target fails on the source; the target reports NOT_ARRIVED; it runs where it was only', async () => {
    // Back towards this machine, through a data address nobody listens on.
    const into = a.executor.handle(command('op-mp-in-0002', 'migrate-in', 3, { sourceHostId: 'pc-b', arrivalTimeoutSeconds: 5 }));
    const out = b.executor.handle(command('op-mp-in-0002.out', 'migrate-out', 3, { targetUri: 'qemu+tcp://10.77.61.1/system', live: true, migrationUri: 'tcp://10.77.61.250' }));
    await Promise.all([into, out]);
    expect(b.results.at(-1)).toMatchObject({ idempotencyKey: 'op-mp-in-0002.out', outcome: 'failed' });
    expect(a.results.at(-1)).toMatchObject({ idempotencyKey: 'op-mp-in-0002', outcome: 'failed', error: { code: 'NOT_ARRIVED' } });
    expect(await b.driver.state(domain)).toBe('running');
    expect(await a.driver.state(domain)).toBe('missing');
  }, 300_000);
});
