import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

/** prisma/migrations at the repository root; the same relative path from src/ and dist/. */
export const DEFAULT_MIGRATIONS_DIR = fileURLToPath(new URL('../../../prisma/migrations', import.meta.url));

// Arbitrary but fixed: every deskpool process that migrates takes this advisory lock, so
// several API processes starting at once apply each migration exactly once.
const MIGRATION_LOCK_KEY = 0x6465736b; // "desk"

export interface Migration {
  name: string;
  sql: string;
  sha256: string;
}

export interface ApplyMigrationsResult {
  applied: string[];
  alreadyApplied: string[];
}

export class MigrationChangedError extends Error {
  constructor(
    readonly migration: string,
    readonly recordedSha256: string,
    readonly currentSha256: string,
  ) {
    super(
      `Migration ${migration} was changed after it was applied (recorded sha256 ${recordedSha256}, file now ${currentSha256}). ` +
        'Never edit an applied migration: restore the original file and add a new migration for the change.',
    );
    this.name = 'MigrationChangedError';
  }
}

export class MigrationMissingError extends Error {
  constructor(readonly migration: string) {
    super(
      `Migration ${migration} is recorded as applied but its file is missing. ` +
        'This database was migrated by a newer or different deskpool; run that version or restore the file.',
    );
    this.name = 'MigrationMissingError';
  }
}

export class MigrationFailedError extends Error {
  constructor(
    readonly migration: string,
    cause: unknown,
  ) {
    super(`Migration ${migration} failed and was rolled back: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'MigrationFailedError';
  }
}

/** Migrations in prisma's folder layout (<timestamp>_<name>/migration.sql), in name order. */
export async function loadMigrations(dir: string = DEFAULT_MIGRATIONS_DIR): Promise<Migration[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const names = entries
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
  const migrations: Migration[] = [];
  for (const name of names) {
    const sql = await readFile(join(dir, name, 'migration.sql'), 'utf8');
    migrations.push({ name, sql, sha256: createHash('sha256').update(sql).digest('hex') });
  }
  return migrations;
}

/**
 * Applies pending migrations, each in its own transaction, under a session advisory lock.
 * Refuses (before applying anything) when an applied migration's file has changed or vanished.
 */
export async function applyMigrations(
  databaseUrl: string,
  options: { migrationsDir?: string } = {},
): Promise<ApplyMigrationsResult> {
  const migrations = await loadMigrations(options.migrationsDir ?? process.env.DESKPOOL_MIGRATIONS_DIR ?? DEFAULT_MIGRATIONS_DIR);
  const client = new pg.Client({ connectionString: databaseUrl });
  // A connection the server ends (e.g. a dropped database) must not crash the process.
  client.on('error', () => undefined);
  await client.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    try {
      await client.query(`CREATE TABLE IF NOT EXISTS "_deskpool_migrations" (
        "name" TEXT PRIMARY KEY,
        "sha256" TEXT NOT NULL,
        "applied_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
      )`);
      const { rows } = await client.query<{ name: string; sha256: string }>('SELECT name, sha256 FROM "_deskpool_migrations"');
      const recorded = new Map(rows.map((r) => [r.name, r.sha256]));
      const known = new Set(migrations.map((m) => m.name));
      for (const name of recorded.keys()) {
        if (!known.has(name)) throw new MigrationMissingError(name);
      }
      for (const m of migrations) {
        const sha = recorded.get(m.name);
        if (sha !== undefined && sha !== m.sha256) throw new MigrationChangedError(m.name, sha, m.sha256);
      }
      const result: ApplyMigrationsResult = { applied: [], alreadyApplied: [] };
      for (const m of migrations) {
        if (recorded.has(m.name)) {
          result.alreadyApplied.push(m.name);
          continue;
        }
        await client.query('BEGIN');
        try {
          await client.query(m.sql);
          await client.query('INSERT INTO "_deskpool_migrations" (name, sha256) VALUES ($1, $2)', [m.name, m.sha256]);
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK');
          throw new MigrationFailedError(m.name, err);
        }
        result.applied.push(m.name);
      }
      return result;
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
    }
  } finally {
    await client.end();
  }
}

/** Names of the migrations applied to a database (empty if it was never migrated). */
export async function appliedMigrations(databaseUrl: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  // A connection the server ends (e.g. a dropped database) must not crash the process.
  client.on('error', () => undefined);
  await client.connect();
  try {
    const exists = await client.query<{ t: string | null }>(`SELECT to_regclass('"_deskpool_migrations"')::text AS t`);
    if (exists.rows[0]?.t == null) return [];
    const { rows } = await client.query<{ name: string }>('SELECT name FROM "_deskpool_migrations" ORDER BY name');
    return rows.map((r) => r.name);
  } finally {
    await client.end();
  }
}
