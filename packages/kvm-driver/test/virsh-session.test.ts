// The persistent virsh shell: answers match their commands under concurrency, long argument
// lines survive virsh's line echo, errors are reported, and a broken session falls back.
import { afterAll, describe, expect, it } from 'vitest';
import { DomainNotFound } from '../src/errors.js';
import { parseKeyValues } from '../src/libvirt/parse.js';
import { VirshSession } from '../src/libvirt/session.js';
import { Virsh } from '../src/libvirt/virsh.js';
import { LocalCommandRunner } from '../src/runner.js';

const runner = new LocalCommandRunner();
const virsh = new Virsh(runner);
afterAll(() => virsh.close());

describe('virsh session', () => {
  it('gives each of many concurrent commands its own answer', async () => {
    const names = Array.from({ length: 12 }, (_, i) => `dpt-session-ghost-${i}`);
    const results = await Promise.all([
      ...names.map((n) => virsh.raw(['dominfo', n])),
      virsh.raw(['nodememstats']),
      virsh.raw(['hostname']),
    ]);
    results.slice(0, names.length).forEach((r, i) => {
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`failed to get domain '${names[i]}'`);
    });
    expect(parseKeyValues(results[names.length]?.stdout ?? '').get('total')).toMatch(/^\d+ KiB$/);
    const oneShot = await runner.run(['hostname']);
    expect(results[names.length + 1]?.stdout.trim()).toBe(oneShot.stdout.trim());
  });

  it('runs a sequence in one round trip, through the session and as one process alike, going on after a failing command', async () => {
    const oneProcess = new Virsh(runner, 'qemu:///system', false);
    for (const v of [virsh, oneProcess]) {
      const r = await v.sequence([['nodememstats'], ['dominfo', 'dpt-session-ghost-seq'], ['hostname']]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("failed to get domain 'dpt-session-ghost-seq'");
      expect(r.stdout).toMatch(/^total\s*:/);
      expect(r.stdout.trim().split('\n').at(-1)).toBe((await runner.run(['hostname'])).stdout.trim());
    }
    await expect(virsh.sequence([['dominfo', 'a;b']])).rejects.toThrow(/plain words/);
  });

  it('keeps output intact for argument lines longer than a terminal row', async () => {
    const long = `/tmp/${'x'.repeat(150)}/missing.state`;
    const r = await virsh.raw(['save-image-dumpxml', long]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(long);
    const again = await virsh.raw(['nodememstats']);
    expect(again.stdout).toMatch(/^total\s*:/);
  });

  it('classifies errors from the session like those of a one-shot virsh', async () => {
    await expect(virsh.run(['dominfo', 'dpt-session-nope'], { operation: 'state', domain: 'dpt-session-nope' })).rejects.toBeInstanceOf(DomainNotFound);
  });

  it('falls back to a fresh virsh process when the session dies, and reopens it later', async () => {
    const session = new VirshSession(runner, 'qemu:///system');
    expect((await session.exec(['hostname'], 10_000)).code).toBe(0);
    session.close();
    // a closed session reopens on demand
    expect((await session.exec(['hostname'], 10_000)).code).toBe(0);
    session.close();
    const noSession = new Virsh(runner, 'qemu:///system', false);
    expect((await noSession.raw(['hostname'])).code).toBe(0);
  });

  it('passes only arguments that need no quoting', () => {
    expect(VirshSession.accepts(['dominfo', 'dpt-a', '--inactive'])).toBe(true);
    expect(VirshSession.accepts(['save', 'dpt-a', '/tmp/with space'])).toBe(false);
    expect(VirshSession.accepts(['define', "/tmp/x';rm"])).toBe(false);
  });
});
