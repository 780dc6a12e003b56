// Pure parts of the remote side: host key checking, shell quoting, migration job parsing.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { acceptableKeyTypes, checkHostKey, keyTypeOfBlob, knownHostsName, parseKnownHosts, sha256Fingerprint } from '../src/remote/host-key.js';
import { commandLine, shellQuote } from '../src/remote/shell-quote.js';
import { migrateArgs, migrationProgress, parseMigrationJob } from '../src/libvirt/migrate.js';
import { partialPath } from '../src/remote/host-files.js';
import { parseSshTarget } from '../src/remote/ssh-connection.js';
import { InvalidSpec } from '../src/errors.js';

function keyBlob(type: string, body: string): Buffer {
  const t = Buffer.from(type);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(t.length);
  return Buffer.concat([len, t, Buffer.from(body)]);
}

describe('host key checking', () => {
  const ed = keyBlob('ssh-ed25519', 'key-one');
  const other = keyBlob('ssh-ed25519', 'key-two');
  const text = [
    '# comment',
    '',
    `10.0.0.2,pc42 ssh-ed25519 ${ed.toString('base64')} root@pc42`,
    `[10.0.0.3]:2222 ssh-rsa ${other.toString('base64')}`,
    `|1|hashed= ssh-ed25519 ${other.toString('base64')}`,
    `@revoked 10.0.0.2 ssh-ed25519 ${other.toString('base64')}`,
  ].join('\n');
  const known = parseKnownHosts(text);

  it('parses plain entries and skips comments, hashed and marker lines', () => {
    expect(known).toEqual([
      { hosts: ['10.0.0.2', 'pc42'], type: 'ssh-ed25519', keyBase64: ed.toString('base64') },
      { hosts: ['[10.0.0.3]:2222'], type: 'ssh-rsa', keyBase64: other.toString('base64') },
    ]);
  });

  it('computes OpenSSH-style SHA256 fingerprints', () => {
    const expected = createHash('sha256').update(ed).digest('base64').replace(/=+$/, '');
    expect(sha256Fingerprint(ed)).toBe(`SHA256:${expected}`);
    expect(keyTypeOfBlob(ed)).toBe('ssh-ed25519');
  });

  it('accepts the listed key for the host and port, and nothing else', () => {
    expect(checkHostKey({ knownHosts: known }, '10.0.0.2', 22, ed)).toEqual({ ok: true });
    expect(checkHostKey({ knownHosts: known }, 'pc42', 22, ed)).toEqual({ ok: true });
    const bad = checkHostKey({ knownHosts: known }, '10.0.0.2', 22, other);
    expect(bad.ok).toBe(false);
    if (!bad.ok) {
      expect(bad.presented).toBe(sha256Fingerprint(other));
      expect(bad.expected).toEqual([sha256Fingerprint(ed)]);
    }
    // Same key, different port: not the entry's host.
    expect(checkHostKey({ knownHosts: known }, '10.0.0.2', 2222, ed).ok).toBe(false);
    expect(checkHostKey({ knownHosts: known }, '10.0.0.3', 2222, other).ok).toBe(true);
    expect(checkHostKey({ knownHosts: known }, 'unknown', 22, ed).ok).toBe(false);
    expect(knownHostsName('h', 22)).toBe('h');
  });

  it('accepts pinned fingerprints with or without the SHA256: prefix and padding', () => {
    const fp = sha256Fingerprint(other);
    expect(checkHostKey({ fingerprints: [fp] }, 'x', 22, other).ok).toBe(true);
    expect(checkHostKey({ fingerprints: [`${fp.slice(7)}=`] }, 'x', 22, other).ok).toBe(true);
    expect(checkHostKey({ fingerprints: [fp] }, 'x', 22, ed).ok).toBe(false);
  });

  it('offers only host key algorithms it could accept', () => {
    expect(acceptableKeyTypes({ knownHosts: known }, '10.0.0.2', 22)).toEqual(['ssh-ed25519']);
    expect(acceptableKeyTypes({ knownHosts: known }, '10.0.0.3', 2222)).toEqual(['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']);
    expect(acceptableKeyTypes({ knownHosts: known, fingerprints: ['SHA256:x'] }, '10.0.0.2', 22)).toBeUndefined();
  });
});

describe('SSH target validation', () => {
  it('requires a key and a way to trust the host', () => {
    expect(() => parseSshTarget({ host: 'h' })).toThrow(InvalidSpec);
    try {
      parseSshTarget({ host: 'h', privateKey: 'k' });
    } catch (e) {
      expect((e as InvalidSpec).issues.map((i) => i.path)).toEqual(['knownHosts']);
    }
    expect(parseSshTarget({ host: 'h', privateKey: 'k', insecureSkipHostKeyCheck: true })).toMatchObject({ port: 22, username: 'root' });
    expect(() => parseSshTarget({ host: 'h', privateKey: 'k', hostKeyFingerprints: ['nope'] })).toThrow(/hostKeyFingerprints/);
  });
});

describe('shell quoting', () => {
  it('a quoted argv reaches the program unchanged through a real shell', () => {
    // Many random argvs in one shell run (a process per case is slow on a busy machine).
    const cases = fc.sample(fc.array(fc.string({ unit: 'binary' }).filter((s) => !s.includes('\0')), { minLength: 1, maxLength: 5 }), { numRuns: 60, seed: 42 });
    const script = cases.map((args) => `${commandLine(['printf', '%s\\0', ...args])}; printf '\\001\\n'`).join('\n');
    const out = execFileSync('sh', ['-c', script]).toString('utf8');
    const got = out.split('\u0001\n').slice(0, -1).map((chunk) => chunk.split('\0').slice(0, -1));
    expect(got).toEqual(cases.map((args) => args.map((a) => Buffer.from(a, 'utf8').toString('utf8'))));
  });

  it('leaves plain words alone and refuses NUL', () => {
    expect(shellQuote('qemu:///system')).toBe('qemu:///system');
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
    expect(shellQuote('')).toBe("''");
    expect(() => shellQuote('a\0b')).toThrow(TypeError);
  });
});

describe('migration job parsing', () => {
  const running = 'Job type: 2\n\noperation: 5\ntime_elapsed: 1515\ndata_total: 134750208\ndata_processed: 41447455\ndata_remaining: 57480000\nmemory_iteration: 0\n';
  const completed = 'Job type: 3\n\noperation: 4\ntime_elapsed: 5439\ndowntime: 166\ndata_total: 134750208\ndata_processed: 65045246\ndata_remaining: 0\nmemory_iteration: 3\n';

  it('reads a running job and reports progress from what remains', () => {
    const s = parseMigrationJob(running);
    expect(s).toMatchObject({ active: true, timeElapsedMs: 1515, dataTotal: 134750208, dataProcessed: 41447455, memoryIteration: 0 });
    const p = migrationProgress(s, 'precopy');
    expect(p).toMatchObject({ phase: 'precopy', bytesDone: 41447455, bytesTotal: 134750208 });
    expect(p.fraction).toBeCloseTo(1 - 57480000 / 134750208, 6);
  });

  it('reads a completed job with its downtime, and an idle one as inactive', () => {
    expect(parseMigrationJob(completed)).toMatchObject({ active: true, downtimeMs: 166, dataProcessed: 65045246, memoryIteration: 3 });
    expect(parseMigrationJob('Job type: 0\n').active).toBe(false);
    expect(parseMigrationJob('Job type:         None\n').active).toBe(false);
    expect(migrationProgress({ active: true, dataTotal: 0, dataProcessed: 0 }, 'precopy')).toEqual({ phase: 'precopy', bytesDone: 0 });
  });

  it('builds the virsh argv from the options', () => {
    expect(migrateArgs('d', { uri: 'qemu+tcp://b/system', migrateUri: 'tcp://b' }, { postCopy: true, bandwidthMiBps: 50, copyStorage: true })).toEqual([
      'migrate', '--live', '--persistent', '--undefinesource', '--postcopy', '--bandwidth', '50', '--copy-storage-all',
      '--domain', 'd', '--desturi', 'qemu+tcp://b/system', '--migrateuri', 'tcp://b',
    ]);
    expect(migrateArgs('d', { uri: 'qemu:///system' }, {})).toEqual(['migrate', '--live', '--persistent', '--undefinesource', '--domain', 'd', '--desturi', 'qemu:///system']);
  });
});

describe('partial file names', () => {
  it('are hidden siblings with a unique suffix', () => {
    const a = partialPath('/var/lib/deskpool/state/vm1.save');
    expect(a).toMatch(/^\/var\/lib\/deskpool\/state\/\.vm1\.save\.part-[0-9a-f]{8}$/);
    expect(partialPath('/var/lib/deskpool/state/vm1.save')).not.toBe(a);
  });
});
