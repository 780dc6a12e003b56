// LocalCommandRunner: argv without a shell, exit codes, stdin, timeout and abort.
import { describe, expect, it } from 'vitest';
import { HostUnreachable, OperationAborted, OperationTimeout } from '../src/errors.js';
import { LocalCommandRunner } from '../src/runner.js';

const runner = new LocalCommandRunner();

describe('LocalCommandRunner', () => {
  it('passes arguments verbatim (no shell) and reports exit code and output', async () => {
    const r = await runner.run(['printf', '%s|', 'a b', '$(x)', ';rm']);
    expect(r).toEqual({ code: 0, stdout: 'a b|$(x)|;rm|', stderr: '' });
    const f = await runner.run(['sh', '-c', 'echo oops >&2; exit 3']);
    expect(f).toEqual({ code: 3, stdout: '', stderr: 'oops\n' });
  });

  it('feeds stdin and runs in the C locale', async () => {
    expect((await runner.run(['cat'], { stdin: 'hello' })).stdout).toBe('hello');
    expect((await runner.run(['sh', '-c', 'echo $LC_ALL'])).stdout).toBe('C\n');
  });

  it('kills a command that overruns its timeout', async () => {
    await expect(runner.run(['sleep', '30'], { timeoutMs: 200 })).rejects.toBeInstanceOf(OperationTimeout);
  });

  it('kills a command when the signal aborts', async () => {
    const ac = new AbortController();
    const p = runner.run(['sleep', '30'], { signal: ac.signal });
    setTimeout(() => ac.abort(), 100);
    await expect(p).rejects.toBeInstanceOf(OperationAborted);
    await expect(runner.run(['true'], { signal: ac.signal })).rejects.toBeInstanceOf(OperationAborted);
  });

  it('says so when the program does not exist', async () => {
    await expect(runner.run(['/nonexistent/virsh'])).rejects.toBeInstanceOf(HostUnreachable);
  });

  it('streams lines of a long-running command until aborted', async () => {
    const ac = new AbortController();
    const lines: string[] = [];
    for await (const line of runner.stream(['sh', '-c', 'echo one; echo two; sleep 30'], { signal: ac.signal })) {
      lines.push(line);
      if (lines.length === 2) ac.abort();
    }
    expect(lines).toEqual(['one', 'two']);
  });

  it('ends a stream that is waiting for its next line when the signal aborts', async () => {
    const ac = new AbortController();
    const lines: string[] = [];
    setTimeout(() => ac.abort(), 300);
    for await (const line of runner.stream(['sh', '-c', 'echo first; sleep 30'], { signal: ac.signal })) lines.push(line);
    expect(lines).toEqual(['first']);
  });
});
