import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimulatedDriver } from '@deskpool/kvm-driver';
import type { CommandFrame } from '@deskpool/protocol';
import { systemClock } from '../src/clock.js';
import { CommandExecutor, type OpReport } from '../src/commands/executor.js';
import { CommandJournal } from '../src/commands/journal.js';
import { sftpStateMover } from '../src/commands/state-mover.js';

// A second "PC" with its own sshd (scripts/testhost.sh, a network namespace on this machine);
// the filesystem outside libvirt's directories is shared, so what lands there can be read here.
const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const HOST = 'dptagent';
const ADDR = '10.77.42.2';

describe('move-state over SFTP to another host', () => {
  let dir: string;
  let known: string;
  let key: string;

  beforeAll(() => {
    execFileSync('bash', [path.join(repoRoot, 'scripts/testhost.sh'), 'up', HOST, ADDR], { stdio: 'ignore' });
    const status = execFileSync('bash', [path.join(repoRoot, 'scripts/testhost.sh'), 'status', HOST]).toString();
    known = /^known_hosts=(.*)$/m.exec(status)?.[1] ?? '';
    key = /^ssh_key=(.*)$/m.exec(status)?.[1] ?? '';
    dir = mkdtempSync(path.join(os.tmpdir(), 'dpt-move-'));
  }, 120_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('moves a saved-state file checksummed, keeps the source, and answers a repeat from the journal', async () => {
    const source = path.join(dir, 'desk.save');
    const target = path.join(dir, 'arrived', 'desk.save');
    execFileSync('mkdir', ['-p', path.dirname(target)]);
    const data = randomBytes(3 * 1024 * 1024 + 17);
    writeFileSync(source, data);
    const journal = await CommandJournal.open(path.join(dir, 'journal.jsonl'));
    const results: OpReport[] = [];
    const progress: number[] = [];
    const executor = new CommandExecutor(
      journal,
      new SimulatedDriver(),
      systemClock,
      { progress: (_k, p) => progress.push(p), result: (r) => results.push(r), log: () => undefined },
      async () => undefined,
      100,
      sftpStateMover({ username: 'root', port: 22, privateKeyPath: key, knownHostsPath: known, insecureSkipHostKeyCheck: false }),
    );
    const command: CommandFrame = {
      type: 'command',
      idempotencyKey: 'op-move-0001',
      kind: 'move-state',
      target: { vmId: 'vm-1', domainName: 'dpt-desk', generation: 3 },
      params: { path: source, targetHost: ADDR, targetPath: target },
    };
    await executor.handle(command);
    const sha = createHash('sha256').update(data).digest('hex');
    expect(results[0]).toMatchObject({ outcome: 'succeeded', result: { sha256: sha, bytes: data.length, changed: true } });
    expect(createHash('sha256').update(readFileSync(target)).digest('hex')).toBe(sha);
    expect(existsSync(source)).toBe(true);
    expect(progress.at(-1)).toBe(100);

    await executor.handle(command);
    expect(results[1]).toMatchObject({ outcome: 'succeeded', replayed: true });
    await journal.close();
  });
});
