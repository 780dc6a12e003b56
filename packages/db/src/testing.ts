import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createPrisma, type PrismaClient } from './client.js';
import { applyMigrations } from './migrations.js';

export const DEFAULT_TEST_ADMIN_URL = 'postgresql://deskpool:deskpool@localhost:5432/deskpool_test';

export interface TestDatabase {
  /** Connection string of the new, migrated database. */
  url: string;
  prisma: PrismaClient;
  /** Disconnects and drops the database. */
  drop(): Promise<void>;
}

/**
 * A fresh, migrated database with a unique name, so test files (and people) can run at once.
 * The admin connection comes from DESKPOOL_TEST_DATABASE_URL; its role needs CREATEDB.
 */
export async function createTestDatabase(): Promise<TestDatabase> {
  const adminUrl = process.env.DESKPOOL_TEST_DATABASE_URL ?? DEFAULT_TEST_ADMIN_URL;
  const name = `dpt_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  await withAdmin(adminUrl, (c) => c.query(`CREATE DATABASE "${name}"`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const dbUrl = url.toString();
  try {
    await applyMigrations(dbUrl);
  } catch (err) {
    await withAdmin(adminUrl, (c) => c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
    throw err;
  }
  const prisma = createPrisma(dbUrl);
  return {
    url: dbUrl,
    prisma,
    async drop() {
      await prisma.$disconnect();
      await withAdmin(adminUrl, (c) => c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
    },
  };
}

async function withAdmin<T>(adminUrl: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl });
  // A connection the server ends (e.g. a dropped database) must not crash the process.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    throw new Error(
      `Cannot reach the test PostgreSQL at ${redact(adminUrl)}: ${(err as Error).message}. ` +
        'Start services with `sudo bash scripts/services.sh` or set DESKPOOL_TEST_DATABASE_URL.',
      { cause: err },
    );
  }
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

function redact(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
}
