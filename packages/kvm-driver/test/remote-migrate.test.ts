// Live migration between two real libvirt hosts: this machine (A, qemu:///system) and the
// test host (B, scripts/testhost.sh), with a tiny 128 MiB guest under TCG whose serial
// counter shows whether it kept running.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MigrationTarget, Progress } from '../src/driver.js';
import { InvalidSpec, MigrationFailed, OperationAborted } from '../src/errors.js';
import { counterValues, readSerialLog } from '../src/guest.js';
import { LibvirtDriver } from '../src/libvirt/driver.js';
import { guestKit, testHost, type GuestKit, type TestHost } from './remote-testhost.js';

let host: TestHost;
let kit: GuestKit;
let driverA: LibvirtDriver;
let driverB: LibvirtDriver;
let toB: MigrationTarget;
let toA: MigrationTarget;
let name: string;

beforeAll(async () => {
  host = await testHost();
  kit = await guestKit('mig');
  driverA = new LibvirtDriver();
  driverB = new LibvirtDriver({ uri: host.libvirtUri });
  // Explicit data URIs: the hosts' names do not resolve to their addresses.
  toB = { uri: host.libvirtUri, migrateUri: `tcp://${host.addr}` };
  toA = { uri: 'qemu:///system', migrateUri: `tcp://${host.rootAddr}` };
  name = kit.name('g');
  await driverA.define(kit.spec(name));
  await driverA.start(name);
  await kit.waitCountAbove(name, 1);
});

afterAll(async () => {
  await kit?.cleanup([driverA, driverB]);
});

async function failure(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (e: unknown) => e,
  );
}

async function expectUnbrokenCounter(): Promise<void> {
  const values = counterValues(await readSerialLog(kit.serialPath(name)));
  expect(values.length).toBeGreaterThan(2);
  values.forEach((v, i) => {
    if (i > 0) expect(v).toBe((values[i - 1] ?? 0) + 1);
  });
}

describe('live migration A <-> B', () => {
  it('rejects a malformed request before touching libvirt', async () => {
    const e = await failure(driverA.migrateLive(name, { uri: 'not a uri', migrateUri: 'ftp://x' }, { bandwidthMiBps: -1 }));
    expect(e).toBeInstanceOf(InvalidSpec);
    expect((e as InvalidSpec).issues.map((i) => i.path).sort()).toEqual(['bandwidthMiBps', 'target.migrateUri', 'target.uri']);
    expect(await driverA.state(name)).toBe('running');
  });

  it('a failed migration carries libvirt\'s reason and leaves the guest running on A', async () => {
    // No host has this address: the target QEMU cannot listen on it.
    const e = await failure(driverA.migrateLive(name, { uri: host.libvirtUri, migrateUri: `tcp://${host.addr.replace(/\.\d+$/, '.250')}` }));
    expect(e).toBeInstanceOf(MigrationFailed);
    const m = e as MigrationFailed;
    expect(m.reason.length).toBeGreaterThan(5);
    expect(m.detail).toMatch(/error/i);
    expect(await driverA.state(name)).toBe('running');
    expect(await driverB.state(name)).toBe('missing');
  }, 180_000);

  it('an abort mid-migration leaves the source running and nothing on the target', async () => {
    const ac = new AbortController();
    const progress: Progress[] = [];
    const e = await failure(
      driverA.migrateLive(name, toB, {
        // Throttled so the abort lands while memory is still being copied.
        bandwidthMiBps: 2,
        signal: ac.signal,
        onProgress: (p) => {
          progress.push(p);
          if ((p.bytesDone ?? 0) > 0) ac.abort();
        },
      }),
    );
    expect(e).toBeInstanceOf(OperationAborted);
    expect(progress.some((p) => p.phase === 'precopy' && (p.bytesDone ?? 0) > 0)).toBe(true);
    expect(await driverA.state(name)).toBe('running');
    expect(await driverB.state(name)).toBe('missing');
    const before = await kit.lastCount(name);
    await kit.waitCountAbove(name, before);
  }, 180_000);

  it('migrates A -> B with progress; the guest keeps counting on B and is gone from A', async () => {
    const before = await kit.lastCount(name);
    const progress: Progress[] = [];
    const res = await driverA.migrateLive(name, toB, { onProgress: (p) => progress.push(p), jobStats: true });
    expect(res).toMatchObject({ changed: true, state: 'running' });
    expect(res.bytesTransferred).toBeGreaterThan(1024 * 1024);
    expect(res.downtimeMs).toBeGreaterThanOrEqual(0);
    expect(progress[0]?.phase).toBe('preparing');
    const copying = progress.filter((p) => p.phase === 'precopy' && (p.bytesTotal ?? 0) > 0);
    expect(copying.length).toBeGreaterThan(0);
    expect(copying[0]?.bytesTotal).toBeGreaterThanOrEqual(128 * 1024 * 1024 * 0.9);
    expect(progress.at(-1)).toMatchObject({ phase: 'done', fraction: 1 });

    expect(await driverA.state(name)).toBe('missing');
    expect(await driverB.state(name)).toBe('running');
    await kit.waitCountAbove(name, before + 1);
    await expectUnbrokenCounter();

    // A repeat finds it already on B.
    expect(await driverA.migrateLive(name, toB)).toEqual({ changed: false, state: 'running' });
  }, 180_000);

  it('migrates back B -> A with post-copy allowed (--postcopy)', async () => {
    const before = await kit.lastCount(name);
    const phases = new Set<string>();
    const res = await driverB.migrateLive(name, toA, { postCopy: true, onProgress: (p) => phases.add(p.phase) });
    expect(res).toMatchObject({ changed: true, state: 'running' });
    // Without jobStats the target is not asked afterwards: no downtime figure, the source's run state.
    expect(res.downtimeMs).toBeUndefined();
    expect(phases.has('done')).toBe(true);
    expect(await driverB.state(name)).toBe('missing');
    expect(await driverA.state(name)).toBe('running');
    await kit.waitCountAbove(name, before + 1);
    await expectUnbrokenCounter();
  }, 180_000);
});
