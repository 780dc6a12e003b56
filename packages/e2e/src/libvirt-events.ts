// Watching libvirt's own lifecycle events for a domain (`virsh event --loop`), so "the domain is
// running" is timed by libvirt the moment it happens, not by how often someone polls.
import { spawn } from 'node:child_process';

export interface LifecycleWatch {
  /** Every event line seen so far. */
  readonly lines: string[];
  /** Resolves with performance.now() at the first event line matching `pattern` after now. */
  next(pattern: RegExp, timeoutMs?: number): Promise<number>;
  close(): void;
}

/** Starts watching; resolves once virsh is connected and listening. */
export async function watchLifecycle(uri: string, domain: string): Promise<LifecycleWatch> {
  const proc = spawn('virsh', ['-c', uri, 'event', '--domain', domain, '--event', 'lifecycle', '--loop'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const waiters: { pattern: RegExp; resolve: (t: number) => void }[] = [];
  const seen: string[] = [];
  let buffered = '';
  proc.stdout.setEncoding('utf8');
  proc.stdout.on('data', (chunk: string) => {
    const at = performance.now();
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) {
      if (line.trim()) seen.push(line.trim());
      for (const w of [...waiters]) {
        if (w.pattern.test(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(at);
        }
      }
    }
  });
  // virsh prints nothing when it is ready; give it a moment to connect and register.
  await new Promise((r) => setTimeout(r, 500));
  if (proc.exitCode !== null) throw new Error(`virsh event exited with ${proc.exitCode}`);
  return {
    lines: seen,
    next(pattern, timeoutMs = 120_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no lifecycle event ${String(pattern)} for ${domain} within ${timeoutMs} ms`)), timeoutMs);
        waiters.push({
          pattern,
          resolve: (t) => {
            clearTimeout(timer);
            resolve(t);
          },
        });
      });
    },
    close() {
      proc.kill('SIGTERM');
    },
  };
}
