export { createPrisma, TRANSACTION_OPTIONS, type CreatePrismaOptions } from './client.js';
export { PrismaClient, Prisma } from './generated/prisma/client.js';
export * from './generated/prisma/enums.js';
export type {
  Pool,
  Host,
  User,
  DesktopVm,
  BatchJob,
  BatchTask,
  Operation,
  EnrollmentToken,
  HostCredential,
  ApiToken,
  AuditEvent,
} from './generated/prisma/client.js';
export {
  applyMigrations,
  appliedMigrations,
  loadMigrations,
  DEFAULT_MIGRATIONS_DIR,
  MigrationChangedError,
  MigrationMissingError,
  MigrationFailedError,
  type Migration,
  type ApplyMigrationsResult,
} from './migrations.js';
export { recordAudit, toJsonValue, type AuditInput, type AuditWriter, type Actor } from './audit.js';
export { createDatabase, dropDatabase } from './databases.js';
