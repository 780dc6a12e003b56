// The tiny guest image: idempotent, reproducible build; its modes, run for real under QEMU.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureGuestImage, guestCmdline, guestDir, guestDomainSpec, waitForSerial } from '../src/guest.js';
import { LibvirtDriver } from '../src/libvirt/driver.js';

const execFileP = promisify(execFile);
const tmp = await mkdtemp(join(tmpdir(), 'dpt-guest-'));
const driver = new LibvirtDriver();
const names: string[] = [];

afterAll(async () => {
  for (const n of names) {
    await driver.destroy(n).catch(() => undefined);
    await driver.undefine(n).catch(() => undefined);
  }
  await rm(tmp, { recursive: true, force: true });
});

describe('guest/build.sh', () => {
  it('builds once; a second run leaves the outputs untouched', async () => {
    const image = await ensureGuestImage();
    const before = (await stat(image.initrd)).mtimeMs;
    await ensureGuestImage();
    expect((await stat(image.initrd)).mtimeMs).toBe(before);
    expect((await stat(image.kernel)).size).toBeGreaterThan(10 * 1024 * 1024);
  });

  it('is reproducible: a fresh build from the same packages gives identical bytes', async () => {
    const dir = guestDir().replace(/\/$/, '');
    const out = join(tmp, 'rebuild');
    await cp(join(dir, 'build/debs'), join(out, 'debs'), { recursive: true });
    await execFileP('bash', [join(dir, 'build.sh')], { env: { ...process.env, GUEST_BUILD_DIR: out } });
    const hashes = (m: string) => m.split('\n').filter((l) => /^[0-9a-f]{64} /.test(l));
    const ours = hashes(await readFile(join(dir, 'build/manifest.txt'), 'utf8'));
    expect(ours).toHaveLength(3);
    expect(hashes(await readFile(join(out, 'manifest.txt'), 'utf8'))).toEqual(ours);
  }, 180_000);
});

describe('guest command line', () => {
  it('encodes the task', () => {
    expect(guestCmdline({ mode: 'counter' })).toBe('console=ttyS0 quiet deskpool.mode=counter');
    expect(guestCmdline({ mode: 'count-to:10', touchMiB: 64, poweroffWhenDone: true })).toBe('console=ttyS0 quiet deskpool.mode=count-to:10 deskpool.touch=64 deskpool.poweroff=1');
    expect(guestCmdline({ script: 'echo hi' })).toContain(`deskpool.cmd=${Buffer.from('echo hi').toString('base64')}`);
    expect(() => guestCmdline({ mode: 'count-to:x' })).toThrow();
  });
});

describe('the guest under QEMU', () => {
  it('prints its banner, fills memory, runs the given script and a batch count, then powers off', async () => {
    const image = await ensureGuestImage();
    const name = `dpt-guest-${randomBytes(3).toString('hex')}`;
    names.push(name);
    const serialLogPath = join(tmp, `${name}.log`);
    const script = 'echo "sum=$((6 * 7))"; dp-count-to 3 50000';
    await driver.define(guestDomainSpec({ name, serialLogPath, image, memoryMiB: 128, task: { script, touchMiB: 16, poweroffWhenDone: true } }));
    await driver.start(name);
    const log = await waitForSerial(serialLogPath, /DESKPOOL-GUEST DONE rc=0/, { timeoutMs: 90_000 });
    const lines = log.split('\n').map((l) => l.trim()).filter((l) => /^(DESKPOOL|TOUCHED|sum=|PROGRESS|RESULT)/.test(l));
    expect(lines.map((l) => l.replace(/ uptime=.*/, ''))).toEqual([
      'DESKPOOL-GUEST READY',
      'TOUCHED 16 MiB',
      'sum=42',
      'PROGRESS 1/3',
      'PROGRESS 2/3',
      'PROGRESS 3/3',
      'RESULT count=3',
      // the line the agent reads a batch task's end from
      'DESKPOOL-RESULT exit=0 count=3',
      'DESKPOOL-GUEST DONE rc=0',
    ]);
    for (let i = 0; i < 100 && (await driver.state(name)) !== 'shutoff'; i++) await new Promise((r) => setTimeout(r, 200));
    expect(await driver.state(name)).toBe('shutoff');
  });
});
