// The real API process (apps/api/dist/main.js) on a fresh PostgreSQL database and the shared
// Redis, and the real `deskpool` binary, for the CLI's integration tests. Both run from dist/:
// build first with `npx tsc -b packages/cli apps/api`.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestDatabase, type TestDatabase } from '@deskpool/db/testing';

export const repo = fileURLToPath(new URL('../../..', import.meta.url));
export const cliMain = join(repo, 'packages/cli/dist/main.js');
export const apiMain = join(repo, 'apps/api/dist/main.js');

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export interface SpawnedApi {
  baseUrl: string;
  adminToken: string;
  db: TestDatabase;
  stop(): Promise<void>;
}

/** A TCP port nothing listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Starts the API with a bootstrap admin token and waits until /readyz answers. */
export async function startApi(label: string): Promise<SpawnedApi> {
  for (const file of [cliMain, apiMain]) {
    if (!existsSync(file)) throw new Error(`${file} is missing: run \`npx tsc -b packages/cli apps/api\` first`);
  }
  const suffix = randomBytes(3).toString('hex');
  const adminToken = `adm_${randomBytes(32).toString('hex')}`;
  const db = await createTestDatabase();
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  let output = '';
  const api: ChildProcess = spawn(process.execPath, [apiMain], {
    // Own queue/channel prefixes (the scheduler's variable names), so hints this API publishes
    // never reach another test's worker on the shared Redis.
    env: {
      PATH: process.env.PATH ?? '',
      DESKPOOL_QUEUE_PREFIX: `dpt-${label}-${suffix}`,
      DESKPOOL_AGENT_CHANNEL_PREFIX: `dpt-${label}-${suffix}:agent:`,
      DATABASE_URL: db.url,
      REDIS_URL: process.env.DESKPOOL_TEST_REDIS_URL ?? 'redis://localhost:6379',
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      DESKPOOL_BOOTSTRAP_ADMIN_TOKEN: adminToken,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  api.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  api.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const stop = async () => {
    if (api.exitCode === null) {
      const exited = new Promise((r) => api.once('exit', r));
      api.kill('SIGTERM');
      await exited;
    }
    await db.drop();
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (api.exitCode !== null) {
      await db.drop();
      throw new Error(`the API exited with ${api.exitCode} before it was ready:\n${output}`);
    }
    if (await fetch(`${baseUrl}/readyz`).then((r) => r.ok, () => false)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`the API was not ready within 60 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { baseUrl, adminToken, db, stop };
}

/** Runs the CLI binary with a clean environment: HOME is `home`, so no real config leaks in. */
export function runCli(home: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [cliMain, ...args],
      { env: { PATH: process.env.PATH ?? '', HOME: home, XDG_CONFIG_HOME: join(home, '.config'), ...env }, timeout: 90_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Starts the CLI binary and leaves it running (e.g. `job logs -f`); collects its output. */
export function spawnCli(home: string, args: string[], env: Record<string, string> = {}): { child: ChildProcess; stdout: () => string; stderr: () => string; exited: Promise<number> } {
  let out = '';
  let err = '';
  const child = spawn(process.execPath, [cliMain, ...args], { env: { PATH: process.env.PATH ?? '', HOME: home, XDG_CONFIG_HOME: join(home, '.config'), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number>((resolve) => child.once('exit', (code) => resolve(code ?? -1)));
  return { child, stdout: () => out, stderr: () => err, exited };
}
