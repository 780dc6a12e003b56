import { cp, mkdtemp, rm, writeFile, appendFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  applyMigrations,
  appliedMigrations,
  DEFAULT_MIGRATIONS_DIR,
  loadMigrations,
  MigrationChangedError,
  MigrationFailedError,
  MigrationMissingError,
} from '../src/index.js';
import { DEFAULT_TEST_ADMIN_URL } from '../src/testing.js';

const adminUrl = process.env.DESKPOOL_TEST_DATABASE_URL ?? DEFAULT_TEST_ADMIN_URL;
const created: string[] = [];

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

async function emptyDatabase(): Promise<string> {
  const name = `dpt_mig_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
  await admin(`CREATE DATABASE "${name}"`);
  created.push(name);
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return u.toString();
}

async function tables(url: string): Promise<string[]> {
  const c = new pg.Client({ connectionString: url });
  // A connection the server ends (e.g. a dropped database) must not crash the process.
  c.on('error', () => undefined);
  await c.connect();
  try {
    const { rows } = await c.query<{ tablename: string }>(`SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename`);
    return rows.map((r) => r.tablename);
  } finally {
    await c.end();
  }
}

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'dpt-migrations-'));
});
afterAll(async () => {
  for (const name of created) await admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  await rm(tmp, { recursive: true, force: true });
});

describe('applyMigrations', () => {
  it('applies every migration to an empty database, and a second run is a no-op', async () => {
    const url = await emptyDatabase();
    const all = (await loadMigrations()).map((m) => m.name);
    expect(all.length).toBeGreaterThan(0);

    const first = await applyMigrations(url);
    expect(first.applied).toEqual(all);
    expect(first.alreadyApplied).toEqual([]);
    expect(await tables(url)).toEqual(
      expect.arrayContaining(['pools', 'hosts', 'users', 'desktop_vms', 'batch_jobs', 'batch_tasks', 'operations', 'audit_events', '_deskpool_migrations']),
    );

    const second = await applyMigrations(url);
    expect(second.applied).toEqual([]);
    expect(second.alreadyApplied).toEqual(all);
    expect(await appliedMigrations(url)).toEqual(all);
  });

  it('applies each migration once when several processes start at the same moment', async () => {
    const url = await emptyDatabase();
    const results = await Promise.all([applyMigrations(url), applyMigrations(url), applyMigrations(url)]);
    const appliedCounts = results.map((r) => r.applied.length).sort();
    const total = (await loadMigrations()).length;
    expect(appliedCounts).toEqual([0, 0, total]);
  });

  it('refuses to run when an applied migration file has changed', async () => {
    const url = await emptyDatabase();
    const dir = join(tmp, 'changed');
    await cp(DEFAULT_MIGRATIONS_DIR, dir, { recursive: true });
    await applyMigrations(url, { migrationsDir: dir });
    const [first] = await loadMigrations(dir);
    await appendFile(join(dir, first!.name, 'migration.sql'), '\n-- edited later\n');
    await expect(applyMigrations(url, { migrationsDir: dir })).rejects.toBeInstanceOf(MigrationChangedError);
  });

  it('refuses to run when an applied migration file is missing', async () => {
    const url = await emptyDatabase();
    const dir = join(tmp, 'extra');
    await cp(DEFAULT_MIGRATIONS_DIR, dir, { recursive: true });
    await mkdir(join(dir, '29990101000000_later'));
    await writeFile(join(dir, '29990101000000_later', 'migration.sql'), 'CREATE TABLE later_thing (id INT);');
    await applyMigrations(url, { migrationsDir: dir });
    await expect(applyMigrations(url)).rejects.toBeInstanceOf(MigrationMissingError);
  });

  it('rolls back a failing migration completely and records nothing for it', async () => {
    const url = await emptyDatabase();
    const dir = join(tmp, 'failing');
    await cp(DEFAULT_MIGRATIONS_DIR, dir, { recursive: true });
    await mkdir(join(dir, '29990101000000_broken'));
    await writeFile(join(dir, '29990101000000_broken', 'migration.sql'), 'CREATE TABLE half_done (id INT);\nSELECT no_such_function();');
    await expect(applyMigrations(url, { migrationsDir: dir })).rejects.toBeInstanceOf(MigrationFailedError);
    expect(await tables(url)).not.toContain('half_done');
    expect(await appliedMigrations(url)).not.toContain('29990101000000_broken');
  });
});
