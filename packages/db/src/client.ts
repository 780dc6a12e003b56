import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from './generated/prisma/client.js';

export type { PrismaClient };

export interface CreatePrismaOptions {
  /** Connections in the pool (node-postgres default: 10). */
  poolSize?: number;
}

/**
 * Interactive transactions wait for a pooled connection and then run under a deadline. Prisma's
 * defaults (2 s / 5 s) turn a burst of writers on one row into errors; these let a burst queue.
 */
export const TRANSACTION_OPTIONS = { maxWait: 10_000, timeout: 15_000 } as const;

/** A Prisma client talking to PostgreSQL through node-postgres (Prisma 7's driver adapter). */
export function createPrisma(databaseUrl: string, options: CreatePrismaOptions = {}): PrismaClient {
  const adapter = new PrismaPg({ connectionString: databaseUrl, ...(options.poolSize !== undefined && { max: options.poolSize }) });
  return new PrismaClient({ adapter, transactionOptions: TRANSACTION_OPTIONS });
}
