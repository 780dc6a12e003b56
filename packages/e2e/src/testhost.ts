// A namespaced libvirt "host" on this machine (scripts/testhost.sh): its own libvirtd and sshd
// in a network namespace, the rest of the filesystem shared with this machine.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);
const TESTHOST_SCRIPT = fileURLToPath(new URL('../../../scripts/testhost.sh', import.meta.url));

export interface TestHost {
  name: string;
  addr: string;
  /** qemu+tcp://ADDR/system */
  libvirtUri: string;
  /** SSH identity its sshd accepts (for move-state). */
  sshKey: string;
  knownHosts: string;
  down(): Promise<void>;
}

export class TestHostUnavailable extends Error {
  constructor(name: string, detail: string) {
    super(`scripts/testhost.sh up ${name} failed (it needs root and libvirt installed; see its header): ${detail}`);
    this.name = 'TestHostUnavailable';
  }
}

/** Starts (idempotently) the test host NAME at ADDR and returns what it printed about itself. */
export async function testHostUp(name: string, addr: string): Promise<TestHost> {
  const { stdout } = await execFileP('bash', [TESTHOST_SCRIPT, 'up', name, addr], { maxBuffer: 4 * 1024 * 1024 }).catch((e: Error & { stderr?: string }) => {
    throw new TestHostUnavailable(name, (e.stderr ?? e.message).trim().split('\n').slice(-3).join(' / '));
  });
  const fact = (k: string): string => {
    const v = new RegExp(`^${k}=(.+)$`, 'm').exec(stdout)?.[1];
    if (!v) throw new TestHostUnavailable(name, `it printed no ${k}`);
    return v;
  };
  return {
    name,
    addr,
    libvirtUri: fact('libvirt_uri'),
    sshKey: fact('ssh_key'),
    knownHosts: fact('known_hosts'),
    async down() {
      await execFileP('bash', [TESTHOST_SCRIPT, 'down', name]).catch(() => undefined);
    },
  };
}
