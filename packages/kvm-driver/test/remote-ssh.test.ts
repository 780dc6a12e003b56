// The SSH command runner against the real second host (scripts/testhost.sh): runs virsh there
// through the LibvirtDriver, refuses a wrong host key or key, reports an unreachable host.
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HostUnreachable, OperationAborted, OperationTimeout } from '../src/errors.js';
import { LibvirtDriver } from '../src/libvirt/driver.js';
import { HostKeyMismatch, SshAuthFailed } from '../src/remote/errors.js';
import { SshCommandRunner } from '../src/remote/ssh-runner.js';
import { testHost, type TestHost } from './remote-testhost.js';

let host: TestHost;
let runner: SshCommandRunner;
let scratch: string;

beforeAll(async () => {
  host = await testHost();
  runner = new SshCommandRunner(host.ssh);
  scratch = await mkdtemp(join(tmpdir(), 'dpt-ssh-'));
});

afterAll(async () => {
  runner?.close();
  await rm(scratch, { recursive: true, force: true });
});

async function failure(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (e: unknown) => e,
  );
}

describe('SshCommandRunner', () => {
  it('runs virsh against the test host\'s own libvirtd', async () => {
    const res = await runner.run(['virsh', '-c', 'qemu:///system', 'hostname']);
    expect(res).toMatchObject({ code: 0, stderr: '' });
    // The test host has its own UTS namespace named after it; the machine's libvirtd would say otherwise.
    expect(res.stdout.trim()).toBe(host.name);
    expect(execFileSync('virsh', ['-c', 'qemu:///system', 'hostname'], { encoding: 'utf8' }).trim()).not.toBe(host.name);
  });

  it('lets the LibvirtDriver drive a host that has no agent', async () => {
    const driver = new LibvirtDriver({ runner, uri: 'qemu:///system' });
    expect(driver.description).toContain(`ssh root@${host.addr}`);
    const info = await driver.hostInfo();
    expect(info.hostname).toBe(host.name);
    expect(info.cpus).toBeGreaterThan(0);
    expect(Array.isArray(await driver.list())).toBe(true);
    expect(await driver.state('dpt-ssh-no-such-domain')).toBe('missing');
  });

  it('passes argv unchanged (no shell interpretation), stdin, exit codes and stderr', async () => {
    const tricky = ["it's", '$HOME', '`id`', 'a b', '*', ''];
    const echo = await runner.run(['printf', '%s|', ...tricky]);
    expect(echo.stdout).toBe(`${tricky.join('|')}|`);
    const cat = await runner.run(['cat'], { stdin: 'line one\nline two\n' });
    expect(cat.stdout).toBe('line one\nline two\n');
    const fail = await runner.run(['sh', '-c', 'echo oops >&2; exit 7']);
    expect(fail).toEqual({ code: 7, stdout: '', stderr: 'oops\n' });
    // The C locale is set remotely too, so libvirt's messages are the English errors.ts matches.
    expect((await runner.run(['sh', '-c', 'echo $LC_ALL'])).stdout.trim()).toBe('C');
  });

  it('runs commands concurrently over one connection', async () => {
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => runner.run(['echo', String(i)])));
    expect(results.map((r) => r.stdout.trim())).toEqual(['0', '1', '2', '3', '4', '5', '6', '7']);
  });

  it('keeps at most maxChannels commands open at once and queues the rest', async () => {
    const limited = new SshCommandRunner({ ...host.ssh, maxChannels: 2 });
    const dir = `${scratch}/concurrency`;
    try {
      await limited.run(['mkdir', '-p', dir]);
      // Each command counts the commands running when it starts, then holds its slot a while.
      const script = 'touch "$1/$2"; ls "$1" | wc -l; sleep 0.4; rm "$1/$2"';
      const results = await Promise.all(Array.from({ length: 6 }, (_, i) => limited.run(['sh', '-c', script, 'sh', dir, String(i)])));
      const running = results.map((r) => Number(r.stdout.trim()));
      expect(results.every((r) => r.code === 0)).toBe(true);
      expect(Math.max(...running)).toBeLessThanOrEqual(2);
    } finally {
      limited.close();
    }
  });

  it('aborts and times out long commands with typed errors', async () => {
    const ac = new AbortController();
    const running = runner.run(['sleep', '30'], { signal: ac.signal });
    setTimeout(() => ac.abort(), 200);
    expect(await failure(running)).toBeInstanceOf(OperationAborted);
    expect(await failure(runner.run(['sleep', '30'], { timeoutMs: 300 }))).toBeInstanceOf(OperationTimeout);
    // The connection is still good afterwards.
    expect((await runner.run(['true'])).code).toBe(0);
  });

  it('keeps an interactive process open and feeds it through stdin', async () => {
    const proc = runner.interactive(['sh', '-c', 'while read -r line; do echo "got $line"; echo "err $line" >&2; done']);
    let out = '';
    let err = '';
    proc.onStdout((s) => (out += s));
    proc.onStderr((s) => (err += s));
    const exited = new Promise<number | null>((resolve) => proc.onExit(resolve));
    // Written before the channel is open: queued, not lost.
    proc.write('one\n');
    proc.write('two\n');
    for (let i = 0; i < 200 && !out.includes('got two'); i++) await new Promise((r) => setTimeout(r, 100));
    expect(out).toBe('got one\ngot two\n');
    expect(err).toBe('err one\nerr two\n');
    proc.kill();
    expect(await exited).toBeNull();
  });

  it('gives the LibvirtDriver a persistent virsh session over SSH', async () => {
    const driver = new LibvirtDriver({ runner, uri: 'qemu:///system' });
    try {
      const states = await Promise.all(['dpt-ssh-a', 'dpt-ssh-b', 'dpt-ssh-c'].map((n) => driver.state(n)));
      expect(states).toEqual(['missing', 'missing', 'missing']);
      expect((await driver.hostInfo()).hostname).toBe(host.name);
    } finally {
      driver.close();
    }
  });

  it('streams output lines', async () => {
    const ac = new AbortController();
    const lines: string[] = [];
    for await (const line of runner.stream(['sh', '-c', 'for i in 1 2 3; do echo "n $i"; done'], { signal: ac.signal })) lines.push(line);
    expect(lines).toEqual(['n 1', 'n 2', 'n 3']);
  });

  it('accepts a pinned fingerprint instead of known_hosts', async () => {
    const pinned = new SshCommandRunner({ host: host.addr, privateKeyPath: host.sshKeyPath, hostKeyFingerprints: [host.fingerprint] });
    try {
      expect((await pinned.run(['echo', 'ok'])).stdout).toBe('ok\n');
    } finally {
      pinned.close();
    }
  });
});

describe('refusals', () => {
  it('refuses a host whose key does not match known_hosts, before authenticating', async () => {
    // A freshly generated key stands in for "the host we expected".
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(scratch, 'impostor')]);
    const pub = (await readFile(join(scratch, 'impostor.pub'), 'utf8')).split(' ');
    const knownHosts = `${host.addr} ${pub[0]} ${pub[1]}\n`;
    const wrong = new SshCommandRunner({ host: host.addr, privateKeyPath: host.sshKeyPath, knownHosts });
    const e = await failure(wrong.run(['touch', join(scratch, 'should-not-exist')]));
    expect(e).toBeInstanceOf(HostKeyMismatch);
    const m = e as HostKeyMismatch;
    expect(m.presented).toBe(host.fingerprint);
    expect(m.hint).toMatch(/known_hosts/);
    await expect(readFile(join(scratch, 'should-not-exist'))).rejects.toThrow(/ENOENT/);
    wrong.close();
  });

  it('refuses a wrong pinned fingerprint', async () => {
    const wrong = new SshCommandRunner({ host: host.addr, privateKeyPath: host.sshKeyPath, hostKeyFingerprints: [`SHA256:${'A'.repeat(43)}`] });
    expect(await failure(wrong.run(['true']))).toBeInstanceOf(HostKeyMismatch);
    wrong.close();
  });

  it('reports a key the host does not authorize as SshAuthFailed', async () => {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(scratch, 'stranger')]);
    const stranger = new SshCommandRunner({ host: host.addr, privateKeyPath: join(scratch, 'stranger'), knownHostsPath: host.knownHostsPath });
    const e = await failure(stranger.run(['true']));
    expect(e).toBeInstanceOf(SshAuthFailed);
    expect((e as SshAuthFailed).hint).toMatch(/authorized_keys/);
    stranger.close();
  });

  it('reports a host where nothing listens as HostUnreachable', async () => {
    // The root side of the veth pair: on the network, but no sshd there.
    const nobody = new SshCommandRunner({ host: host.rootAddr, port: 22, privateKeyPath: host.sshKeyPath, insecureSkipHostKeyCheck: true, connectTimeoutMs: 3000 });
    const e = await failure(nobody.run(['true']));
    expect(e).toBeInstanceOf(HostUnreachable);
    expect((e as HostUnreachable).detail).toMatch(/ECONNREFUSED|refused/i);
    nobody.close();
  });
});
