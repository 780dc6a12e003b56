import rateLimit, { normalizeIP } from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import { ApiError } from './errors.js';

/**
 * Limits on what a guesser or a runaway client can try, per client IP and time window:
 * enrollment attempts, agent connection attempts, and failed authentications (any 401: a bad
 * API token, host credential or enrollment token). After `failedAuthMax` failures, every request
 * under /api/v1 from that IP is answered 429 until the window ends — a guesser cannot keep
 * trying tokens, and valid ones from the same IP wait too (that is the price; see docs/reliability.md).
 */
export interface RateLimitSettings {
  windowMs: number;
  /** POST /api/v1/agent/enroll per IP per window. */
  enrollMax: number;
  /** GET /api/v1/agent/ws (agent connections) per IP per window. */
  agentConnectMax: number;
  /** Failed authentications per IP per window before that IP is refused. */
  failedAuthMax: number;
  /** Counters in Redis, shared by every API process; without it, in this process's memory. */
  redis?: Redis;
  /** Redis key prefix of the counters. */
  keyPrefix?: string;
}

export const DEFAULT_RATE_LIMITS = { windowMs: 60_000, enrollMax: 10, agentConnectMax: 60, failedAuthMax: 20 } as const;

const ENROLL_ROUTE = '/api/v1/agent/enroll';
const AGENT_WS_ROUTE = '/api/v1/agent/ws';

interface LimitStatus {
  isAllowed: boolean;
  isExceeded?: boolean;
  remaining?: number;
  ttlInSeconds?: number;
}
type Limiter = (request: FastifyRequest, options?: { increment?: boolean }) => Promise<LimitStatus>;

function tooMany(status: LimitStatus, what: string): ApiError {
  const seconds = Math.max(1, status.ttlInSeconds ?? 1);
  return new ApiError(429, 'RATE_LIMITED', `too many ${what} from this address; retry after ${seconds} s`, { retryAfterSeconds: seconds });
}

/**
 * Adds the limits to the app. Call before any route is registered (the hooks are the root's).
 * The 429 answer carries `Retry-After` (seconds) and the usual error body.
 */
export async function registerRateLimits(app: FastifyInstance, settings: RateLimitSettings): Promise<void> {
  await app.register(rateLimit, {
    global: false,
    // A Redis outage must not turn every request into a 500: limits pause, /healthz reports it.
    skipOnError: true,
    ...(settings.redis ? { redis: settings.redis, nameSpace: settings.keyPrefix ?? 'deskpool:ratelimit:' } : {}),
  });
  const limiter = (name: string, max: number): Limiter =>
    app.createRateLimit({
      max,
      timeWindow: settings.windowMs,
      keyGenerator: (request: FastifyRequest) => `${name}:${normalizeIP(request.ip)}`,
    }) as Limiter;
  const enroll = limiter('enroll', settings.enrollMax);
  const connect = limiter('agent-connect', settings.agentConnectMax);
  const failedAuth = limiter('failed-auth', settings.failedAuthMax);

  app.addHook('onRequest', async (request, reply) => {
    if (!request.url.startsWith('/api/v1/')) return;
    const check = async (limit: Limiter, what: string, increment: boolean, exhaustedAt: 'remaining-zero' | 'exceeded') => {
      const status = await limit(request, { increment });
      const refused = status.isAllowed ? false : exhaustedAt === 'exceeded' ? status.isExceeded === true : status.remaining === 0;
      if (!refused) return;
      const error = tooMany(status, what);
      void reply.header('retry-after', String((error.details as { retryAfterSeconds: number }).retryAfterSeconds));
      throw error;
    };
    // A peek: only failures count against this limit (counted in onResponse below).
    await check(failedAuth, 'failed authentications', false, 'remaining-zero');
    const route = request.routeOptions.url;
    if (request.method === 'POST' && route === ENROLL_ROUTE) await check(enroll, 'enrollment attempts', true, 'exceeded');
    if (request.method === 'GET' && route === AGENT_WS_ROUTE) await check(connect, 'agent connections', true, 'exceeded');
  });

  app.addHook('onResponse', async (request, reply) => {
    if (reply.statusCode === 401 && request.url.startsWith('/api/v1/')) await failedAuth(request).catch(() => undefined);
  });
}
