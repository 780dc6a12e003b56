// The real `deskpool` binary against a real API process (apps/api/dist/main.js) on a fresh
// PostgreSQL database and the shared Redis. Both run from dist/: build first with
// `npx tsc -b packages/cli apps/api` (npm test does).
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, runCli, startApi, type Run, type SpawnedApi } from './spawned-api.js';

let api: SpawnedApi;
let baseUrl: string;
let adminToken: string;
const home = mkdtempSync(join(tmpdir(), 'deskpool-cli-it-'));
const suffix = randomBytes(3).toString('hex');

/** Runs the CLI binary with a clean environment: HOME is a temp dir, so no real config leaks in. */
const cli = (args: string[], env: Record<string, string> = {}): Promise<Run> => runCli(home, args, env);

/** The CLI as the bootstrap admin, answering JSON. */
async function admin(args: string[]): Promise<unknown> {
  const run = await cli(['--json', ...args], { DESKPOOL_URL: baseUrl, DESKPOOL_TOKEN: adminToken });
  if (run.code !== 0) throw new Error(`deskpool ${args.join(' ')} exited ${run.code}: ${run.stderr}`);
  return JSON.parse(run.stdout);
}

const asAdmin = (args: string[]) => cli(args, { DESKPOOL_URL: baseUrl, DESKPOOL_TOKEN: adminToken });

beforeAll(async () => {
  api = await startApi('cli');
  ({ baseUrl, adminToken } = api);
}, 120_000);

afterAll(async () => {
  await api?.stop();
});

// Each test runs the binary several times; on a loaded 2-core machine one run can take seconds.
describe('deskpool CLI against a running API', { timeout: 180_000 }, () => {
  it('health reports the server, PostgreSQL and Redis as up', async () => {
    const run = await cli(['--url', baseUrl, 'health']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/healthy:\s+true/);
    expect(run.stdout).toMatch(/postgres:\s+ok/);
    expect(run.stdout).toMatch(/redis:\s+ok/);
  });

  it('creates, lists, shows, updates and deletes a pool', async () => {
    const name = `lab-${suffix}`;
    const created = (await admin(['pool', 'create', '--name', name, '--time-zone', 'Europe/Berlin', '--set', 'officeDays=[1,2,3]', '--set', 'batchAllowed=false'])) as Record<string, unknown>;
    expect(created).toMatchObject({ name, timeZone: 'Europe/Berlin', officeDays: [1, 2, 3], batchAllowed: false, version: 1 });
    const id = created.id as string;

    const table = await asAdmin(['pool', 'list']);
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^ID\s+NAME\s+TIMEZONE/);
    expect(table.stdout).toMatch(new RegExp(`${id}\\s+${name}\\s+Europe/Berlin`));

    const shown = await asAdmin(['pool', 'show', id]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/^timeZone:\s+Europe\/Berlin$/m);

    const updated = (await admin(['pool', 'update', id, '--idle-minutes', '30', '--if-version', '1'])) as Record<string, unknown>;
    expect(updated).toMatchObject({ id, idleThresholdMinutes: 30, version: 2 });

    const stale = await asAdmin(['pool', 'update', id, '--description', 'late', '--if-version', '1']);
    expect(stale.code).toBe(1);
    expect(stale.stderr).toContain('VERSION_CONFLICT (HTTP 409)');

    const deleted = await asAdmin(['pool', 'delete', id]);
    expect(deleted).toMatchObject({ code: 0, stdout: `deleted pool ${id}\n` });
    const gone = await asAdmin(['pool', 'show', id]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain('NOT_FOUND (HTTP 404)');
  });

  it('creates an enrollment token for a pool, shown once, and lists it without the secret', async () => {
    const pool = (await admin(['pool', 'create', '--name', `enroll-${suffix}`])) as { id: string };
    const created = (await admin(['host', 'enroll-token', '--pool', pool.id, '--ttl', '600', '--note', 'pc-42'])) as Record<string, unknown>;
    expect(created).toMatchObject({ poolId: pool.id, note: 'pc-42', usedAt: null });
    expect(typeof created.token).toBe('string');
    const listed = (await admin(['host', 'enroll-tokens', '--all'])) as { items: Array<Record<string, unknown>> };
    const mine = listed.items.find((t) => t.id === created.id);
    expect(mine).toMatchObject({ note: 'pc-42' });
    expect(mine).not.toHaveProperty('token');
  });

  it('lists, shows, relabels, drains, undrains and removes a host enrolled the way an agent does', async () => {
    const pool = (await admin(['pool', 'create', '--name', `hosts-${suffix}`])) as { id: string };
    const { token } = (await admin(['host', 'enroll-token', '--pool', pool.id])) as { token: string };
    // The agent's own enrollment call (apps/agent does exactly this POST), so a host exists.
    const inventory = {
      hostname: `pc-${suffix}`, cpuCores: 8, memoryMiB: 32768, diskGiB: 512, gpus: [], macAddresses: ['52:54:00:12:34:56'], agentVersion: '0.1.0',
      hypervisor: { kvm: true, libvirtVersion: '9.0.0', qemuVersion: '7.2.0', liveMigration: true, hotplugCpu: true, hotplugMemory: true },
    };
    const enrolled = await fetch(`${baseUrl}/api/v1/agent/enroll`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token, inventory }) });
    expect(enrolled.status).toBe(201);
    const { hostId } = (await enrolled.json()) as { hostId: string };

    const table = await asAdmin(['host', 'list', '--pool', pool.id]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(new RegExp(`${hostId}\\s+pc-${suffix}\\s+${pool.id}`));
    expect(await admin(['host', 'show', hostId])).toMatchObject({ id: hostId, cores: 8, memoryMiB: 32768, drained: false });
    expect(await admin(['host', 'update', hostId, '--label', 'gpu-free', '--label', 'floor-2'])).toMatchObject({ labels: ['gpu-free', 'floor-2'] });
    expect(await admin(['host', 'drain', hostId])).toMatchObject({ drained: true });
    expect(await admin(['host', 'undrain', hostId])).toMatchObject({ drained: false });
    expect(await admin(['host', 'remove', hostId])).toEqual({ removed: hostId });
    const gone = await asAdmin(['host', 'show', hostId]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain('(HTTP 404)');
  });

  it('creates a user and a token for them; that token is who `me` says and may not administer', async () => {
    const user = (await admin(['user', 'create', '--name', `ada-${suffix}`, '--display-name', 'Ada L.', '--role', 'submitter'])) as { id: string };
    const token = (await admin(['token', 'create', '--name', 'ada-laptop', '--role', 'submitter', '--user', user.id])) as { token: string; role: string };
    expect(token.role).toBe('submitter');

    const me = await cli(['--json', 'me'], { DESKPOOL_URL: baseUrl, DESKPOOL_TOKEN: token.token });
    expect(me.code).toBe(0);
    expect(JSON.parse(me.stdout)).toMatchObject({ role: 'submitter', user: { id: user.id, name: `ada-${suffix}` } });

    const forbidden = await cli(['pool', 'list'], { DESKPOOL_URL: baseUrl, DESKPOOL_TOKEN: token.token });
    expect(forbidden.code).toBe(1);
    expect(forbidden.stderr).toContain('(HTTP 403)');

    const badToken = await cli(['me'], { DESKPOOL_URL: baseUrl, DESKPOOL_TOKEN: 'dpa_not-a-real-token' });
    expect(badToken.code).toBe(1);
    expect(badToken.stderr).toContain('(HTTP 401)');
    expect(badToken.stderr).toContain('check the token');
  });

  it('creates, resizes, pins, unpins and deletes a desktop VM', async () => {
    const owner = (await admin(['user', 'create', '--name', `vm-owner-${suffix}`, '--pool', ((await admin(['pool', 'create', '--name', `vms-${suffix}`])) as { id: string }).id])) as { id: string };
    const vm = (await admin(['vm', 'create', '--name', `desk-${suffix}`, '--owner', owner.id, '--vcpus', '2', '--memory-mib', '2048', '--disk-gib', '20', '--disk-location', '/var/lib/deskpool/desk.qcow2'])) as Record<string, unknown>;
    expect(vm).toMatchObject({ ownerUserId: owner.id, vcpus: 2, memoryMiB: 2048, pinned: false });
    const id = vm.id as string;
    expect(await admin(['vm', 'update', id, '--vcpus', '4', '--max-vcpus', '4'])).toMatchObject({ vcpus: 4 });
    expect(await admin(['vm', 'pin', id])).toMatchObject({ pinned: true });
    expect(await admin(['vm', 'unpin', id])).toMatchObject({ pinned: false });
    const listed = await asAdmin(['vm', 'list', '--owner', owner.id]);
    expect(listed.stdout).toMatch(new RegExp(`${id}\\s+desk-${suffix}\\s+${owner.id}\\s+STOPPED`));
    expect(await admin(['vm', 'delete', id])).toEqual({ deleted: id });
  });

  it('updates and deletes a user, and a revoked token stops working', async () => {
    const user = (await admin(['user', 'create', '--name', `bob-${suffix}`])) as { id: string };
    expect(await admin(['user', 'update', user.id, '--display-name', 'Bob B.', '--role', 'submitter', '--if-version', '1'])).toMatchObject({ displayName: 'Bob B.', role: 'submitter', version: 2 });
    const created = (await admin(['token', 'create', '--name', 'bob-ci', '--role', 'submitter', '--user', user.id])) as { id: string; token: string };
    const listed = (await admin(['token', 'list', '--all'])) as { items: Array<Record<string, unknown>> };
    expect(listed.items.find((t) => t.id === created.id)).toMatchObject({ name: 'bob-ci', revokedAt: null });
    expect(listed.items.every((t) => !('token' in t))).toBe(true);
    expect(await admin(['token', 'revoke', created.id])).toEqual({ revoked: created.id });
    const revoked = await cli(['me'], { DESKPOOL_URL: baseUrl, DESKPOOL_TOKEN: created.token });
    expect(revoked.code).toBe(1);
    expect(revoked.stderr).toContain('(HTTP 401)');
    expect(await admin(['user', 'delete', user.id])).toEqual({ deleted: user.id });
  });

  it('submits a YAML job, lists, shows and cancels it', async () => {
    const file = join(home, 'job.yaml');
    writeFileSync(file, `name: render-${suffix}\ntaskCount: 2\ncommand: ["blender", "-b", "scene.blend"]\ncores: 2\n`);
    const job = (await admin(['job', 'submit', file])) as { id: string; state: string; taskCount: number };
    expect(job).toMatchObject({ state: 'queued', taskCount: 2 });
    const shown = await asAdmin(['job', 'show', job.id]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/tasks:\nINDEX\s+STATE/);
    expect(shown.stdout.match(/^\d+\s+queued/gm)).toHaveLength(2);
    const cancelled = await asAdmin(['--json', 'job', 'cancel', job.id]);
    expect(cancelled.code).toBe(0);
    expect((JSON.parse(cancelled.stdout) as { cancelRequestedAt: string | null }).cancelRequestedAt).not.toBeNull();
  });

  it('follows pagination with --all and points at the next page otherwise', async () => {
    for (const n of [1, 2, 3]) await admin(['user', 'create', '--name', `page-${suffix}-${n}`]);
    const first = await asAdmin(['user', 'list', '--limit', '2']);
    expect(first.code).toBe(0);
    expect(first.stdout.trim().split('\n')).toHaveLength(3); // header + 2 rows
    expect(first.stderr).toMatch(/more results: rerun with --cursor \S+, or --all/);
    const all = (await admin(['user', 'list', '--limit', '2', '--all'])) as { items: Array<{ name: string }>; nextCursor: null };
    expect(all.nextCursor).toBeNull();
    expect(all.items.map((u) => u.name)).toEqual(expect.arrayContaining([1, 2, 3].map((n) => `page-${suffix}-${n}`)));
  });

  it('lists the audit trail filtered by entity type', async () => {
    const audit = (await admin(['audit', '--entity-type', 'pool', '--all'])) as { items: Array<{ entityType: string; action: string }> };
    expect(audit.items.length).toBeGreaterThan(0);
    expect(audit.items.every((e) => e.entityType === 'pool')).toBe(true);
    expect(audit.items.map((e) => e.action)).toContain('create');
  });

  it('shows an API validation error with the field name, and exits 1', async () => {
    const run = await asAdmin(['pool', 'show', 'not-a-uuid']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('VALIDATION_FAILED (HTTP 400)');
    expect(run.stderr).toMatch(/- id \(in params\): /);

    const json = await asAdmin(['--json', 'host', 'list', '--pool', 'nope']);
    expect(json.code).toBe(1);
    const body = JSON.parse(json.stderr) as { error: { code: string; details: { issues: Array<{ path: string[] }> } }; status: number };
    expect(body.status).toBe(400);
    expect(body.error.details.issues[0]!.path).toEqual(['poolId']);
  });

  it('refuses a bad body before sending it, naming the field, and exits 2', async () => {
    const run = await asAdmin(['pool', 'create', '--name', 'bad name!', '--time-zone', 'Mars/Olympus']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/invalid pool:\n {2}- name: .*\n {2}- timeZone: not a known IANA time zone/);
  });

  it('login writes a 0600 config file that later commands use', async () => {
    const configPath = join(home, 'login', 'config.json');
    const login = await cli(['login', '--url', baseUrl, '--token', adminToken], { DESKPOOL_CONFIG: configPath });
    expect(login.code).toBe(0);
    expect(login.stdout).toContain('signed in as');
    expect(statSync(configPath).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(configPath, 'utf8'))).toEqual({ url: baseUrl, token: adminToken });
    const me = await cli(['--json', 'me'], { DESKPOOL_CONFIG: configPath });
    expect(me.code).toBe(0);
    expect(JSON.parse(me.stdout)).toMatchObject({ role: 'admin' });

    const refused = await cli(['login', '--url', baseUrl, '--token', 'dpa_wrong'], { DESKPOOL_CONFIG: join(home, 'login', 'other.json') });
    expect(refused.code).toBe(1);
    expect(existsSync(join(home, 'login', 'other.json'))).toBe(false);
  });

  it('explains a bad config file and a missing token, and exits 2', async () => {
    const configPath = join(home, 'bad-config.json');
    writeFileSync(configPath, JSON.stringify({ url: 'ftp://deskpool.example', token: 't' }));
    const bad = await cli(['pool', 'list'], { DESKPOOL_CONFIG: configPath });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(`config file ${configPath}: field "url" must be an http:// or https:// URL`);

    const missing = await cli(['pool', 'list'], { DESKPOOL_CONFIG: join(home, 'absent.json') });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('does not exist');

    const noToken = await cli(['pool', 'list', '--limit', '5'], { DESKPOOL_URL: baseUrl });
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toContain('no API token');

    const usage = await asAdmin(['pool', 'list', '--limit', '500']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("option '--limit <n>' argument '500' is invalid. must be at most 200");
  });

  it('says when the server cannot be reached, and exits 3', async () => {
    const closedPort = await freePort();
    const run = await cli(['--url', `http://127.0.0.1:${closedPort}`, '--token', adminToken, 'pool', 'list']);
    expect(run.code).toBe(3);
    expect(run.stderr).toContain(`cannot reach the deskpool server at http://127.0.0.1:${closedPort}: connection refused`);
  });
});
