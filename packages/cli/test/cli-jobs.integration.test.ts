// `deskpool job ...` as a submitter would use it, against a spawned API: submit (YAML, JSON),
// bad specs named by field, list/show/cancel, logs (and -f), results; another submitter's
// jobs stay invisible. Most runs are the command tree in-process (a node start per run costs
// seconds on a loaded machine); submit and `logs -f` also run as the real binary.
// Build first: `npx tsc -b packages/cli apps/api`.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readOptionalFile } from '../src/config-store.js';
import { runCli as runInProcess } from '../src/program.js';
import { runCli, spawnCli, startApi, type Run, type SpawnedApi } from './spawned-api.js';

let api: SpawnedApi;
const home = mkdtempSync(join(tmpdir(), 'deskpool-cli-jobs-'));
const tokens = { sam: '', sue: '' };

/** The CLI in-process with real HTTP; output as the binary prints it (a newline per line). */
async function inProcess(token: string, args: string[]): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const code = await runInProcess(args, {
    stdout: (t) => (stdout += `${t}\n`),
    stderr: (t) => (stderr += `${t}\n`),
    env: { HOME: home, XDG_CONFIG_HOME: join(home, '.config'), DESKPOOL_URL: api.baseUrl, DESKPOOL_TOKEN: token },
    readFile: readOptionalFile,
    writeConfig: () => {
      throw new Error('no test here logs in');
    },
  });
  return { code, stdout, stderr };
}
const as = (who: keyof typeof tokens, args: string[]) => inProcess(tokens[who], args);
const asAdmin = (args: string[]) => inProcess(api.adminToken, args);
const binaryAs = (who: keyof typeof tokens, args: string[]) => runCli(home, args, { DESKPOOL_URL: api.baseUrl, DESKPOOL_TOKEN: tokens[who] });
async function json<T>(run: Promise<Run>): Promise<T> {
  const r = await run;
  if (r.code !== 0) throw new Error(`exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

function specFile(name: string, text: string): string {
  const file = join(home, name);
  writeFileSync(file, text);
  return file;
}

beforeAll(async () => {
  api = await startApi('clijobs');
  for (const who of ['sam', 'sue'] as const) {
    const user = await json<{ id: string }>(asAdmin(['--json', 'user', 'create', '--name', who, '--role', 'submitter']));
    tokens[who] = (await json<{ token: string }>(asAdmin(['--json', 'token', 'create', '--name', `${who}-ci`, '--role', 'submitter', '--user', user.id]))).token;
  }
}, 120_000);

afterAll(async () => {
  await api?.stop();
});

describe('deskpool job', { timeout: 180_000 }, () => {
  it('submits YAML and JSON specs; a submitter lists and shows only their own jobs', async () => {
    const yaml = specFile('count.yaml', 'name: count\ntaskCount: 2\ncommand: [count-to, "1000"]\ncores: 1\nmemoryMiB: 256\ncheckpointable: true\nenv:\n  STEP: "1"\n');
    const fromYaml = await json<{ id: string; taskCount: number; spec: Record<string, unknown> }>(binaryAs('sam', ['--json', 'job', 'submit', yaml]));
    expect(fromYaml).toMatchObject({ taskCount: 2, spec: { command: ['count-to', '1000'], env: { STEP: '1' } } });
    const jsonFile = specFile('img.json', JSON.stringify({ name: 'image-job', image: '/var/lib/deskpool/images/sim.qcow2', priority: 300 }));
    const fromJson = await json<{ id: string; priority: number }>(as('sue', ['--json', 'job', 'submit', jsonFile]));
    expect(fromJson.priority).toBe(300);

    const list = await as('sam', ['job', 'list']);
    expect(list.code).toBe(0);
    expect(list.stdout).toContain(fromYaml.id);
    expect(list.stdout).not.toContain(fromJson.id);
    const shown = await as('sam', ['job', 'show', fromYaml.id]);
    expect(shown.stdout.match(/^\d+\s+queued/gm)).toHaveLength(2);
  });

  it('refuses bad specs before sending, naming the field, and exits 2', async () => {
    const cases: [string, string, string][] = [
      ['missing.yaml', 'command: [x]\n', 'name'],
      ['negative.yaml', 'name: n\ncommand: [x]\ncores: -1\n', 'cores'],
      ['constraint.yaml', 'name: n\ncommand: [x]\nconstraints:\n  - { attribute: gpu, operator: like, value: x }\n', 'constraints[0].operator'],
      ['attribute.yaml', 'name: n\ncommand: [x]\nconstraints:\n  - { attribute: colour, operator: exists }\n', 'constraints[0].attribute'],
      ['unknown.json', JSON.stringify({ name: 'n', command: ['x'], colour: 'red' }), 'colour'],
      ['neither.yaml', 'name: n\n', 'command'],
    ];
    for (const [file, text, field] of cases) {
      const run = await as('sam', ['job', 'submit', specFile(file, text)]);
      expect(run.code, `${file}: ${run.stderr}`).toBe(2);
      expect(run.stderr, file).toContain(field);
    }
    const big = await as('sam', ['job', 'submit', specFile('big.yaml', `name: big\ncommand: [x]\nenv:\n  BIG: "${'x'.repeat(1_100_000)}"\n`)]);
    expect(big.code).toBe(2);
    expect(big.stderr).toContain('at most 1048576 bytes');
    const before = await json<{ items: unknown[] }>(as('sam', ['--json', 'job', 'list', '--all']));
    expect(before.items).toHaveLength(1);
  });

  it('shows the API naming a field only it can check (an unknown pool), and exits 1', async () => {
    const run = await as('sam', ['job', 'submit', specFile('pool.yaml', 'name: p\ncommand: [x]\npoolId: 00000000-0000-4000-8000-000000000000\n')]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('poolId');
    expect(run.stderr).toContain('(HTTP 400)');
  });

  it('prints logs, follows them until the task ends, and lists and downloads results', async () => {
    const job = await json<{ id: string }>(as('sam', ['--json', 'job', 'submit', specFile('logs.yaml', 'name: logs\ntaskCount: 2\ncommand: [count-to, "3"]\n')]));
    const tasks = await api.db.prisma.batchTask.findMany({ where: { jobId: job.id }, orderBy: { index: 'asc' } });
    const chunk = (offset: number, data: string, generation = 1) =>
      api.db.prisma.taskOutputChunk.create({ data: { taskId: tasks[0]!.id, generation, offset: BigInt(offset), length: Buffer.byteLength(data), data, at: new Date() } });
    await api.db.prisma.batchTask.update({ where: { id: tasks[0]!.id }, data: { state: 'running', generation: 1 } });
    await chunk(0, '1\n');

    const once = await as('sam', ['job', 'logs', job.id, '--task', '0']);
    expect(once).toMatchObject({ code: 0, stdout: '1\n' });

    const follower = spawnCli(home, ['job', 'logs', '-f', job.id], { DESKPOOL_URL: api.baseUrl, DESKPOOL_TOKEN: tokens.sam });
    for (let i = 0; i < 600 && !follower.stdout().includes('1\n'); i++) await new Promise((r) => setTimeout(r, 100));
    expect(follower.stdout()).toBe('1\n');
    await chunk(2, '2\n');
    await chunk(0, '3\n', 2); // resumed elsewhere: a new console carrying on the count
    await api.db.prisma.batchTask.update({ where: { id: tasks[0]!.id }, data: { state: 'succeeded', attempts: 1, exitStatus: 0 } });
    await api.db.prisma.taskResult.create({ data: { taskId: tasks[0]!.id, generation: 2, exitCode: 0, result: 'counted to 3', at: new Date() } });
    expect(await follower.exited).toBe(0);
    expect(follower.stdout()).toBe('1\n2\n3\n');

    const table = await as('sam', ['job', 'results', job.id]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^0\s+succeeded\s+1\s+0\s+counted to 3/m);
    expect(table.stdout).toMatch(/^1\s+queued\s+0\s/m);
    const out = join(home, 'result.txt');
    const saved = await as('sam', ['job', 'results', job.id, '--task', '0', '-o', out]);
    expect(saved.code, saved.stderr).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe('counted to 3');
    const printed = await as('sam', ['job', 'results', job.id, '--task', '0']);
    expect(printed.stdout).toBe('counted to 3\n');
    const none = await as('sam', ['job', 'results', job.id, '--task', '1']);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('no result yet');
    const badIndex = await as('sam', ['job', 'logs', job.id, '--task', '7']);
    expect(badIndex.code).toBe(1);
    expect(badIndex.stderr).toContain('index');
  });

  it("another submitter can neither see, follow, read results of, nor cancel someone's job", async () => {
    const job = await json<{ id: string }>(as('sam', ['--json', 'job', 'submit', specFile('private.yaml', 'name: private\ncommand: [x]\n')]));
    for (const args of [['job', 'show', job.id], ['job', 'logs', job.id], ['job', 'logs', '-f', job.id], ['job', 'results', job.id], ['job', 'results', job.id, '--task', '0'], ['job', 'cancel', job.id]]) {
      const run = await as('sue', args);
      expect(run.code, args.join(' ')).toBe(1);
      expect(run.stderr, args.join(' ')).toContain('(HTTP 404)');
    }
    expect((await json<{ state: string }>(as('sam', ['--json', 'job', 'show', job.id]))).state).toBe('queued');
    const cancelled = await json<{ state: string }>(as('sam', ['--json', 'job', 'cancel', job.id]));
    expect(cancelled.state).toBe('cancelled');
  });
});
