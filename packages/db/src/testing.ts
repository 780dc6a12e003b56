import { randomBytes } from 'node:crypto';
import { createPrisma, type PrismaClient } from './client.js';
import { createDatabase, dropDatabase } from './databases.js';
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
  const dbUrl = await createDatabase(adminUrl, name);
  try {
    await applyMigrations(dbUrl);
  } catch (err) {
    await dropDatabase(adminUrl, name);
    throw err;
  }
  const prisma = createPrisma(dbUrl);
  return {
    url: dbUrl,
    prisma,
    async drop() {
      await prisma.$disconnect();
      await dropDatabase(adminUrl, name);
    },
  };
}
