// Hot-desking a SUSPENDED desktop in a local-storage pool, end to end with real parts: this
// machine's libvirtd (PC "pc-a") and a second libvirtd in its own network and mount namespace
// (scripts/testhost.sh; PC named by its address, where saved states go over SFTP). The desktop
// is suspended at pc-a overnight (a libvirt managed save); its owner signs in at the second PC:
// pc-a's agent sends the managed-save image there and undefines the desktop, the second PC
// restores it from the moved file, and the guest's counter carries on without a reboot.
// Both agents run in this process, so they see the same /var/lib/deskpool; the managed-save
// images are in each libvirtd's own (private) directory, so source and target are distinct files.
import { execFile } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOffice, type CounterGuest, type Office, type OfficeHost, type OfficeUser } from '../src/index.js';

const execFileP = promisify(execFile);
const TESTHOST = 'dpte2es';
const TESTHOST_ADDR = '10.77.89.2';
const SAVED_DIR = '/var/lib/deskpool/saved';
const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

type Desk = CounterGuest & { vmId: string };

async function testHost(): Promise<{ libvirtUri: string; sshKey: string; knownHosts: string }> {
  const { stdout } = await execFileP('bash', [`${repoRoot}scripts/testhost.sh`, 'up', TESTHOST, TESTHOST_ADDR]).catch((e: Error & { stderr?: string }) => {
    throw new Error(`scripts/testhost.sh up ${TESTHOST} failed (run the tests as root with libvirt installed): ${e.stderr ?? e.message}`);
  });
  const get = (k: string): string => {
    const v = new RegExp(`^${k}=(.*)$`, 'm').exec(stdout)?.[1];
    if (!v) throw new Error(`testhost.sh printed no ${k}`);
    return v;
  };
  return { libvirtUri: get('libvirt_uri'), sshKey: get('ssh_key'), knownHosts: get('known_hosts') };
}

describe('hot-desking a suspended desktop to a second libvirt host (local storage)', { timeout: 300_000 }, () => {
  let office: Office;
  let pcA: OfficeHost;
  let pcB: OfficeHost;
  let roamer: OfficeUser;
  let desk: Desk;
  const hostRow = (h: OfficeHost) => office.prisma.host.findUniqueOrThrow({ where: { id: h.hostId } });

  beforeAll(async () => {
    const host = await testHost();
    // Where the scheduler names saved states; the SFTP mover writes into an existing directory.
    await mkdir(SAVED_DIR, { recursive: true, mode: 0o700 });
    office = await startOffice();
    office.startWorker();
    const stateMover = { privateKeyPath: host.sshKey, knownHostsPath: host.knownHosts };
    [pcA, pcB] = await Promise.all([
      office.addHost({ name: 'pc-a', stateMover }),
      office.addHost({ name: TESTHOST_ADDR, libvirtUri: host.libvirtUri, stateMover, migration: { uri: host.libvirtUri, dataUri: `tcp://${TESTHOST_ADDR}` } }),
    ]);
    roamer = await office.createUser();
    desk = await office.addDesktop(pcA, { tag: 'roams', owner: roamer });
    desk.alsoOn(pcB.driver);
  }, 400_000);

  afterAll(async () => {
    await office?.close();
    if (desk) await rm(`${SAVED_DIR}/${desk.domain}.save`, { force: true });
  });

  it('is suspended at pc-a, then restored at the PC its owner signs in at from the moved state, and is gone from pc-a', async () => {
    const tappedAt = office.clock.now();
    await pcA.tap();
    await expect.poll(async () => {
      const row = await hostRow(pcA);
      return row.presenceState === 'idle' && (row.presenceSince?.getTime() ?? 0) >= tappedAt - 1000;
    }, { timeout: 30_000 }).toBe(true);
    office.clock.advance(2 * 60_000);
    await office.timer('idleCheck');
    const suspended = await office.waitForVm(desk.vmId, 'the desktop is suspended at pc-a', (v) => v.state === 'SUSPENDED', 120_000);
    expect(suspended.savedStateHostId).toBe(pcA.hostId);
    expect(await pcA.driver.state(desk.domain)).toBe('saved');
    const count = await desk.lastCount();

    await pcB.signIn(roamer.name);
    const vm = await office.waitForVm(desk.vmId, 'the desktop runs at the second PC', (v) => v.state === 'RUNNING' && v.currentHostId === pcB.hostId, 240_000);
    expect(vm.savedStateHostId).toBeNull();
    expect(await pcB.driver.state(desk.domain)).toBe('running');
    // Not left defined (with an older saved copy) at pc-a.
    expect(await pcA.driver.state(desk.domain)).toBe('missing');
    expect(await desk.waitCountAbove(count + 1, 120_000)).toBeGreaterThan(count + 1);
    expect(await desk.neverRebooted()).toBe(true);

    // The moved copy is deleted at the second PC once the restore from it is confirmed.
    await expect
      .poll(async () => (await office.prisma.operation.findMany({ where: { vmId: desk.vmId }, orderBy: { createdAt: 'asc' } })).map((o) => [o.kind, o.status, o.hostId === pcA.hostId ? 'pc-a' : 'pc-b']), { timeout: 60_000 })
      .toEqual([
        ['suspend', 'succeeded', 'pc-a'],
        ['move-state', 'succeeded', 'pc-a'],
        ['restore', 'succeeded', 'pc-b'],
        ['delete-state', 'succeeded', 'pc-b'],
      ]);
  });
});
