// Hot-desking between two real libvirt hosts: this machine's libvirtd (PC "pc-a") and a second
// libvirtd in its own network and mount namespace (scripts/testhost.sh; PC named by its address,
// which is where saved states go over SFTP). A person signing in at the second PC gets their
// desktop there, and it is no longer on the first:
// a running desktop is live-migrated (the guest's counter carries on without a reboot).
// (A suspended desktop moves by its saved state: desktop-hotdesk-suspended.test.ts.)
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOffice, type CounterGuest, type Office, type OfficeHost, type OfficeUser } from '../src/index.js';

const execFileP = promisify(execFile);
const TESTHOST = 'dpte2e';
const TESTHOST_ADDR = '10.77.66.2';
const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

type Desk = CounterGuest & { vmId: string };

async function testHost(): Promise<{ libvirtUri: string; sshKey: string; knownHosts: string }> {
  const { stdout } = await execFileP('bash', [`${repoRoot}scripts/testhost.sh`, 'up', TESTHOST, TESTHOST_ADDR]).catch((e: Error & { stderr?: string }) => {
    throw new Error(`scripts/testhost.sh up ${TESTHOST} failed (run the tests as root with libvirt installed): ${e.stderr ?? e.message}`);
  });
  const kv = new Map(stdout.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const));
  const get = (k: string): string => {
    const v = kv.get(k);
    if (!v) throw new Error(`testhost.sh printed no ${k}`);
    return v;
  };
  return { libvirtUri: get('libvirt_uri'), sshKey: get('ssh_key'), knownHosts: get('known_hosts') };
}

describe('hot-desking to a second libvirt host', { timeout: 240_000 }, () => {
  let office: Office;
  let pcA: OfficeHost;
  let pcB: OfficeHost;
  let roamer: OfficeUser;
  let roamingDesk: Desk;

  beforeAll(async () => {
    const host = await testHost();
    office = await startOffice();
    office.startWorker();
    const stateMover = { privateKeyPath: host.sshKey, knownHostsPath: host.knownHosts };
    [pcA, pcB] = await Promise.all([
      office.addHost({ name: 'pc-a', stateMover }),
      office.addHost({ name: TESTHOST_ADDR, libvirtUri: host.libvirtUri, stateMover, migration: { uri: host.libvirtUri, dataUri: `tcp://${TESTHOST_ADDR}` } }),
    ]);
    // At pc-a: the desktop of a person who has no PC of their own.
    roamer = await office.createUser();
    roamingDesk = await office.addDesktop(pcA, { tag: 'roam', owner: roamer });
    roamingDesk.alsoOn(pcB.driver);
  }, 600_000);

  afterAll(async () => {
    await office?.close();
  });

  it('live-migrates a running desktop to the PC its owner signs in at', async () => {
    const count = await roamingDesk.lastCount();
    await pcB.signIn(roamer.name);
    await office.waitForVm(roamingDesk.vmId, 'the desktop runs at the second PC', (v) => v.state === 'RUNNING' && v.currentHostId === pcB.hostId, 180_000);
    expect(await pcB.driver.state(roamingDesk.domain)).toBe('running');
    expect(await pcA.driver.state(roamingDesk.domain).catch(() => 'absent')).not.toBe('running');
    expect(await roamingDesk.waitCountAbove(count + 1)).toBeGreaterThan(count + 1);
    expect(await roamingDesk.neverRebooted()).toBe(true);
    // The target confirms the arrival; the source's `virsh migrate` answers a moment later.
    await expect
      .poll(async () => (await office.prisma.operation.findMany({ where: { vmId: roamingDesk.vmId }, orderBy: { kind: 'asc' } })).map((o) => [o.kind, o.status, o.hostId === pcA.hostId ? 'pc-a' : 'pc-b']), { timeout: 60_000 })
      .toEqual([
        ['migrate-in', 'succeeded', 'pc-b'],
        ['migrate-out', 'succeeded', 'pc-a'],
      ]);
  });
});
