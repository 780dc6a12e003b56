import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { loadMigrations } from '../src/index.js';
import { DEFAULT_TEST_ADMIN_URL } from '../src/testing.js';

const run = promisify(execFile);
const BIN = fileURLToPath(new URL('../src/bin/migrate.ts', import.meta.url));
const adminUrl = process.env.DESKPOOL_TEST_DATABASE_URL ?? DEFAULT_TEST_ADMIN_URL;
const name = `dpt_cli_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;

async function admin(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: adminUrl });
  // A connection the server ends (e.g. a dropped database) must not crash the process.
  c.on('error', () => undefined);
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

const migrate = (env: Record<string, string>) =>
  run(process.execPath, ['--conditions=source', '--import', 'tsx', BIN], { env: { PATH: process.env.PATH ?? '', ...env } });

afterAll(async () => {
  await admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
});

describe('deskpool-migrate', () => {
  it('applies pending migrations to DATABASE_URL, then reports nothing to do', async () => {
    await admin(`CREATE DATABASE "${name}"`);
    const u = new URL(adminUrl);
    u.pathname = `/${name}`;
    const total = (await loadMigrations()).length;
    const first = await migrate({ DATABASE_URL: u.toString() });
    expect(first.stdout).toContain(`${total} applied, 0 already applied`);
    const second = await migrate({ DATABASE_URL: u.toString() });
    expect(second.stdout).toContain(`0 applied, ${total} already applied`);
  });

  it('exits non-zero with a hint when no database is given', async () => {
    await expect(migrate({})).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining('set DATABASE_URL') });
  });
});
