import type { UserRole } from '@deskpool/db';
import { createTestDatabase, type TestDatabase } from '@deskpool/db/testing';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { Redis } from 'ioredis';
import { buildApp, type AppDeps } from '../src/app.js';
import { generateSecret, hashSecret, SECRET_PREFIX } from '../src/secrets.js';

export const REDIS_URL = process.env.DESKPOOL_TEST_REDIS_URL ?? 'redis://localhost:6379';

export interface Harness {
  app: FastifyInstance;
  db: TestDatabase;
  redis: Redis;
  /** Tokens by role: admin (no user), user (alice), submitter (sam), plus a second user and submitter. */
  tokens: { admin: string; user: string; otherUser: string; submitter: string; otherSubmitter: string };
  users: { alice: string; bob: string; sam: string; sue: string };
  /** Sends a request with the given bearer token (or none). */
  call(token: string | null, opts: InjectOptions): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

async function makeToken(db: TestDatabase, role: UserRole, name: string, userId: string | null): Promise<string> {
  const secret = generateSecret(SECRET_PREFIX.apiToken);
  await db.prisma.apiToken.create({ data: { name, role, userId, tokenHash: hashSecret(secret) } });
  return secret;
}

/** A fresh database, a real Redis connection and the app, with one token per role. */
export async function startHarness(overrides: Partial<AppDeps> = {}): Promise<Harness> {
  const db = await createTestDatabase();
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  const app = await buildApp({ logLevel: false }, { prisma: db.prisma, redis, ...overrides });
  await app.ready();
  const mk = (name: string, role: UserRole) => db.prisma.user.create({ data: { name, role } });
  const [alice, bob, sam, sue] = [await mk('alice', 'user'), await mk('bob', 'user'), await mk('sam', 'submitter'), await mk('sue', 'submitter')];
  const tokens = {
    admin: await makeToken(db, 'admin', 'root', null),
    user: await makeToken(db, 'user', 'alice-laptop', alice.id),
    otherUser: await makeToken(db, 'user', 'bob-laptop', bob.id),
    submitter: await makeToken(db, 'submitter', 'sam-ci', sam.id),
    otherSubmitter: await makeToken(db, 'submitter', 'sue-ci', sue.id),
  };
  return {
    app,
    db,
    redis,
    tokens,
    users: { alice: alice.id, bob: bob.id, sam: sam.id, sue: sue.id },
    call(token, opts) {
      const headers = { ...(opts.headers ?? {}), ...(token !== null && { authorization: `Bearer ${token}` }) };
      return app.inject({ ...opts, headers });
    },
    async close() {
      await app.close();
      redis.disconnect();
      await db.drop();
    },
  };
}

/** The body of an error answer, typed loosely for assertions. */
export function errorOf(res: LightMyRequestResponse): { code: string; message: string; details?: { issues?: { location: string; path: (string | number)[]; message: string }[] } } {
  return (res.json() as { error: ReturnType<typeof errorOf> }).error;
}

/** The field paths a 400 names, e.g. ["body.timeZone"]. */
export function fieldsOf(res: LightMyRequestResponse): string[] {
  return (errorOf(res).details?.issues ?? []).map((i) => [i.location, ...i.path].join('.'));
}

export const MISSING_ID = '00000000-0000-4000-8000-000000000000';
