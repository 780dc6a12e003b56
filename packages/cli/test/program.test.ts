// The command tree in-process, for everything that is decided before a request is sent.
import { describe, expect, it } from 'vitest';
import type { CliIo } from '../src/context.js';
import { ApiRequestError, ServerUnreachableError } from '../src/errors.js';
import { renderError, runCli } from '../src/program.js';

function harness(env: Record<string, string> = {}, files: Record<string, string> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const written: Array<{ path: string; config: unknown }> = [];
  const io: CliIo = {
    stdout: (t) => out.push(t),
    stderr: (t) => err.push(t),
    env: { HOME: '/home/nobody', ...env },
    readFile: (p) => files[p],
    writeConfig: (path, config) => written.push({ path, config }),
    fetch: () => Promise.reject(new Error('no request may be sent in these tests')),
  };
  return { io, out, err, written, run: (...argv: string[]) => runCli(argv, io) };
}

describe('runCli exit codes before any request', () => {
  it('0 for --help and --version', async () => {
    const h = harness();
    expect(await h.run('--help')).toBe(0);
    expect(h.out.join('\n')).toContain('Exit codes: 0 ok, 1 the API refused');
    expect(await h.run('--version')).toBe(0);
  });

  it('2 for unknown commands, bad flags and missing required options', async () => {
    const h = harness({ DESKPOOL_URL: 'http://x', DESKPOOL_TOKEN: 't' });
    expect(await h.run('frobnicate')).toBe(2);
    expect(await h.run('pool', 'list', '--limit', '0')).toBe(2);
    expect(await h.run('token', 'create', '--name', 'x')).toBe(2);
    expect(await h.run('token', 'create', '--name', 'x', '--role', 'root')).toBe(2);
    expect(h.err.join('\n')).toMatch(/argument 'root' is invalid. Allowed choices are admin, user, submitter/);
  });

  it('2 for an empty id, with the reason', async () => {
    const h = harness({ DESKPOOL_URL: 'http://x', DESKPOOL_TOKEN: 't' });
    expect(await h.run('pool', 'show', ' ')).toBe(2);
    expect(h.err.at(-1)).toBe('error: the id argument must not be empty');
  });

  it('2 with a hint when no server is configured, as text or JSON', async () => {
    const h = harness();
    expect(await h.run('pool', 'list')).toBe(2);
    expect(h.err.at(-1)).toBe('error: no server URL: pass --url, set DESKPOOL_URL, or run `deskpool login --url URL --token TOKEN`');
    expect(await h.run('--json', 'me')).toBe(2);
    expect(JSON.parse(h.err.at(-1)!)).toEqual({ error: { code: 'USAGE', message: expect.stringContaining('no server URL'), details: { field: 'url' } }, exitCode: 2 });
  });

  it('2 for a body the API schema refuses, listing every field', async () => {
    const h = harness({ DESKPOOL_URL: 'http://x', DESKPOOL_TOKEN: 't' });
    expect(await h.run('vm', 'create', '--name', 'desk', '--vcpus', '2')).toBe(2);
    const message = h.err.at(-1)!;
    expect(message).toMatch(/^error: invalid VM:/);
    for (const field of ['ownerUserId', 'memoryMiB', 'diskGiB', 'diskLocation']) expect(message).toContain(`- ${field}: `);
  });

  it('login refuses to save nothing, and saves URL and token without --verify', async () => {
    const h = harness();
    expect(await h.run('login')).toBe(2);
    expect(await h.run('--config', '/tmp/x.json', 'login', '--url', 'http://deskpool.example:8080/', '--token', 'tok', '--no-verify')).toBe(0);
    expect(h.written).toEqual([{ path: '/tmp/x.json', config: { url: 'http://deskpool.example:8080', token: 'tok' } }]);
  });
});

describe('renderError', () => {
  it('shows the API error code, status and each field at fault', () => {
    const e = new ApiRequestError(400, { code: 'VALIDATION_FAILED', message: 'body/name is required', details: { issues: [{ location: 'body', path: ['name'], message: 'Required' }, { location: 'query', path: ['limit'], message: 'Too big' }] } }, 'POST', '/api/v1/pools');
    expect(renderError(e).split('\n')).toEqual([
      'error: POST /api/v1/pools refused: VALIDATION_FAILED (HTTP 400): body/name is required',
      '  - name: Required',
      '  - limit (in query): Too big',
    ]);
  });
  it('explains an unreachable server', () => {
    expect(renderError(new ServerUnreachableError('http://h:1', 'connection refused'))).toBe('error: cannot reach the deskpool server at http://h:1: connection refused');
  });
});
