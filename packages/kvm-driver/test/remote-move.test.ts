// Saved state moved between two real libvirt hosts over SFTP: this machine (A) and the test
// host (B, scripts/testhost.sh). B's target directory is a tmpfs mounted in B's mount
// namespace only, so a file there really lives on B.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { access, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Progress } from '../src/driver.js';
import { InsufficientResources, OperationAborted } from '../src/errors.js';
import { counterValues, readSerialLog } from '../src/guest.js';
import { LibvirtDriver } from '../src/libvirt/driver.js';
import { ChecksumMismatch } from '../src/remote/errors.js';
import { LocalFiles, SftpFiles } from '../src/remote/host-files.js';
import { moveStateFile } from '../src/remote/sftp-move.js';
import { SshConnection } from '../src/remote/ssh-connection.js';
import { SshCommandRunner } from '../src/remote/ssh-runner.js';
import { guestKit, mountOnTestHost, testHost, type GuestKit, type TestHost } from './remote-testhost.js';

let host: TestHost;
let kit: GuestKit;
let conn: SshConnection;
let runnerB: SshCommandRunner;
let driverA: LibvirtDriver;
let driverB: LibvirtDriver;
let filesA: LocalFiles;
let filesB: SftpFiles;
let diskB: string;
const unmounts: (() => Promise<void>)[] = [];

beforeAll(async () => {
  host = await testHost();
  kit = await guestKit('mv');
  conn = new SshConnection(host.ssh);
  runnerB = new SshCommandRunner(conn);
  driverA = new LibvirtDriver();
  // B has no agent: its libvirt is driven over SSH.
  driverB = new LibvirtDriver({ runner: runnerB, uri: 'qemu:///system' });
  filesA = new LocalFiles();
  filesB = new SftpFiles(conn);
  diskB = join(kit.dir, 'disk-b');
  unmounts.push(await mountOnTestHost(host, diskB, 384));
});

afterAll(async () => {
  await kit?.cleanup([driverA, driverB]);
  for (const u of unmounts) await u();
  filesB?.close();
  conn?.close();
});

const sha256 = async (path: string): Promise<string> => createHash('sha256').update(await readFile(path)).digest('hex');
const existsHere = (path: string): Promise<boolean> => access(path).then(() => true, () => false);
const listB = async (dir: string): Promise<string[]> => (await runnerB.run(['ls', '-A', dir])).stdout.split('\n').filter(Boolean);

async function randomFile(name: string, mib: number): Promise<string> {
  const path = join(kit.dir, name);
  await writeFile(path, randomBytes(mib * 1024 * 1024));
  return path;
}

describe('save on A, move by SFTP, restore on B', () => {
  it('the guest continues counting on B from where it stopped on A', async () => {
    const name = kit.name('g');
    await driverA.define(kit.spec(name));
    await driverA.start(name);
    await kit.waitCountAbove(name, 2);

    const statePath = join(kit.dir, `${name}.save`);
    const saved = await driverA.saveToFile(name, statePath);
    expect(saved).toMatchObject({ changed: true, state: 'shutoff' });
    const countAtSave = await kit.lastCount(name);

    const progress: Progress[] = [];
    const target = join(diskB, `${name}.save`);
    const moved = await moveStateFile({ files: filesA, path: statePath }, { files: filesB, path: target }, { onProgress: (p) => progress.push(p) });
    expect(moved).toEqual({ changed: true, bytes: saved.bytes, sha256: await sha256(statePath) });
    expect(progress[0]?.phase).toBe('checking');
    expect(progress.some((p) => p.phase === 'copying' && (p.bytesDone ?? 0) > 0 && p.bytesTotal === saved.bytes)).toBe(true);
    expect(progress.map((p) => p.phase)).toContain('verifying');
    expect(progress.at(-1)).toMatchObject({ phase: 'done', fraction: 1 });
    // On B only (its own tmpfs), arrived under its final name, nothing partial left behind.
    expect(await existsHere(target)).toBe(false);
    expect(await listB(diskB)).toEqual([`${name}.save`]);
    // Saved state is deleted only after a restore from it is confirmed: the source stays.
    expect(await existsHere(statePath)).toBe(true);

    const restored = await driverB.restoreFromFile(target);
    expect(restored).toMatchObject({ changed: true, state: 'running', name });
    expect(await driverB.state(name)).toBe('running');
    const after = await kit.waitCountAbove(name, countAtSave + 1);
    expect(after).toBeGreaterThan(countAtSave + 1);
    // One unbroken sequence: no reboot (which would start again at 1), no gap across the move.
    const values = counterValues(await readSerialLog(kit.serialPath(name)));
    values.forEach((v, i) => {
      if (i > 0) expect(v).toBe((values[i - 1] ?? 0) + 1);
    });

    // A repeat of the move finds the identical file in place.
    const again = await moveStateFile({ files: filesA, path: statePath }, { files: filesB, path: target });
    expect(again).toMatchObject({ changed: false, sha256: moved.sha256 });
  }, 240_000);
});

describe('moving files between the hosts', () => {
  it('moves B -> A as well, verified', async () => {
    const src = await randomFile('roundtrip.bin', 24);
    const onB = join(diskB, 'roundtrip.bin');
    await moveStateFile({ files: filesA, path: src }, { files: filesB, path: onB });
    const back = join(kit.dir, 'roundtrip-back.bin');
    const res = await moveStateFile({ files: filesB, path: onB }, { files: filesA, path: back }, { removeSource: true });
    expect(res.sha256).toBe(await sha256(src));
    expect(await sha256(back)).toBe(res.sha256);
    expect(await listB(diskB)).not.toContain('roundtrip.bin');
  });

  it('creates a missing target directory (owner-only) on either side', async () => {
    const src = await randomFile('newdir.bin', 2);
    const onB = join(diskB, 'fresh', 'saved', 'newdir.bin');
    await moveStateFile({ files: filesA, path: src }, { files: filesB, path: onB });
    expect(await listB(join(diskB, 'fresh', 'saved'))).toEqual(['newdir.bin']);
    expect((await runnerB.run(['stat', '-c', '%a', join(diskB, 'fresh', 'saved')])).stdout.trim()).toBe('700');
    const back = join(kit.dir, 'fresh-here', 'newdir.bin');
    await moveStateFile({ files: filesB, path: onB }, { files: filesA, path: back }, { removeSource: true });
    expect(await sha256(back)).toBe(await sha256(src));
  });

  it('an abort mid-transfer removes the partial file on the target', async () => {
    const src = await randomFile('abort.bin', 96);
    const ac = new AbortController();
    const target = join(diskB, 'abort.bin');
    const err = await moveStateFile({ files: filesA, path: src }, { files: filesB, path: target }, {
      signal: ac.signal,
      onProgress: (p) => {
        if (p.phase === 'copying' && (p.bytesDone ?? 0) > 0) ac.abort();
      },
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(OperationAborted);
    expect((await listB(diskB)).filter((f) => f.startsWith('abort.bin') || f.startsWith('.abort.bin'))).toEqual([]);
  });

  it('a checksum recorded at save time that no longer matches stops the move', async () => {
    const src = await randomFile('tampered.bin', 4);
    const err = await moveStateFile({ files: filesA, path: src }, { files: filesB, path: join(diskB, 'tampered.bin') }, { expectedSha256: '0'.repeat(64) }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ChecksumMismatch);
    expect((await listB(diskB)).filter((f) => f.includes('tampered'))).toEqual([]);
  });

  it('a target without room is refused with InsufficientResources before anything is written', async () => {
    const tiny = join(kit.dir, 'tiny-b');
    unmounts.push(await mountOnTestHost(host, tiny, 8));
    const src = await randomFile('too-big.bin', 16);
    const err = await moveStateFile({ files: filesA, path: src }, { files: filesB, path: join(tiny, 'too-big.bin') }, { reserveBytes: 0 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(InsufficientResources);
    expect((err as InsufficientResources).resource).toBe('disk');
    expect((err as InsufficientResources).hint).toMatch(/disk/);
    expect(await listB(tiny)).toEqual([]);
  });

  it('a target that fills up after the check is reported as InsufficientResources and cleaned up', async () => {
    const tiny = join(kit.dir, 'filling-b');
    unmounts.push(await mountOnTestHost(host, tiny, 16));
    const src = await randomFile('fits-at-first.bin', 12);
    const err = await moveStateFile({ files: filesA, path: src }, { files: filesB, path: join(tiny, 'fits-at-first.bin') }, {
      reserveBytes: 0,
      onProgress: (p) => {
        // Another writer on B takes the room between our free-space check and the copy.
        if (p.phase === 'copying' && p.bytesDone === 0) {
          execFileSync('nsenter', [`--mount=${host.mountNs}`, 'fallocate', '-l', '10M', join(tiny, 'other-writer.bin')]);
        }
      },
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(InsufficientResources);
    expect(await listB(tiny)).toEqual(['other-writer.bin']);
  });
});
