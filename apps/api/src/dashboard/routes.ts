import type { PrismaClient } from '@deskpool/db';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { allow } from '../auth.js';
import type { Clock } from '../clock.js';
import { ApiError } from '../errors.js';
import { bearer, errorResponses } from '../route-deps.js';
import type { DashboardFeed, FeedEvent } from './feed.js';
import { PC_STATE_MEANING, PC_STATES, POWER_MODEL, readFleet } from './fleet.js';
import { fleetQuerySchema, fleetSchema, MAX_TIMELINE_SPAN_MS, queueSchema, timelineQuerySchema, timelineSchema } from './schemas.js';
import { buildTimeline, type StoredSample } from './timeline.js';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

export interface DashboardRouteDeps {
  prisma: PrismaClient;
  clock: Clock;
  feed: DashboardFeed;
  /** Comment lines keep idle event streams open through proxies. */
  keepAliveMs?: number;
}

const tags = ['dashboard'];
const DEFAULT_TIMELINE_SPAN_MS = 24 * 3600_000;

/** Read-only admin endpoints under /api/v1/dashboard (registered inside the API-token scope). */
export const dashboardApiRoutes: FastifyPluginAsyncZod<DashboardRouteDeps> = async (app, { prisma, clock, feed, keepAliveMs = 15_000 }) => {
  app.addHook('onRequest', allow('admin'));
  const streams = new Set<FastifyReply>();
  // Open event streams would keep the server from closing.
  app.addHook('preClose', async () => {
    for (const reply of streams) reply.raw.end();
  });

  app.get('/fleet', { schema: { tags, security: bearer, querystring: fleetQuerySchema, response: { 200: fleetSchema, ...errorResponses } } }, async (request) => {
    const fleet = await readFleet(prisma, request.query.poolId);
    return {
      at: clock.now().toISOString(),
      pcs: fleet.pcs,
      counts: fleet.counts,
      powerWatts: fleet.powerWatts,
      alwaysOnWatts: fleet.alwaysOnWatts,
      states: PC_STATES.map((state) => ({ state, meaning: PC_STATE_MEANING[state] })),
    };
  });

  app.get('/queue', { schema: { tags, security: bearer, response: { 200: queueSchema, ...errorResponses } } }, async () => {
    const [jobs, tasks] = await Promise.all([
      prisma.$queryRaw<{ state: string; n: number }[]>`SELECT state::text, count(*)::int AS n FROM batch_jobs GROUP BY 1`,
      prisma.$queryRaw<{ state: string; n: number }[]>`SELECT state::text, count(*)::int AS n FROM batch_tasks GROUP BY 1`,
    ]);
    return { jobs: Object.fromEntries(jobs.map((r) => [r.state, r.n])), tasks: Object.fromEntries(tasks.map((r) => [r.state, r.n])) };
  });

  app.get('/timeline', { schema: { tags, security: bearer, querystring: timelineQuerySchema, response: { 200: timelineSchema, ...errorResponses } } }, async (request) => {
    const until = request.query.until !== undefined ? new Date(request.query.until) : clock.now();
    const since = request.query.since !== undefined ? new Date(request.query.since) : new Date(until.getTime() - Math.min(DEFAULT_TIMELINE_SPAN_MS, MAX_TIMELINE_SPAN_MS));
    if (since >= until) throw new ApiError(400, 'VALIDATION_FAILED', 'query.since: must be before until (which defaults to now)', { issues: [{ location: 'query', path: ['since'], message: 'must be before until (which defaults to now)' }] });
    const rows = await prisma.$queryRaw<{ at: Date; pcs: Record<string, number>; power_watts: number; always_on_watts: number; desktops_running: number; tasks_running: number; tasks_succeeded: number }[]>`
      SELECT at, pcs, power_watts, always_on_watts, desktops_running, tasks_running, tasks_succeeded
      FROM fleet_samples WHERE at >= ${since} AND at <= ${until} ORDER BY at`;
    const samples: StoredSample[] = rows.map((r) => ({
      at: r.at,
      pcs: r.pcs,
      powerWatts: r.power_watts,
      alwaysOnWatts: r.always_on_watts,
      desktopsRunning: r.desktops_running,
      tasksRunning: r.tasks_running,
      tasksSucceeded: r.tasks_succeeded,
    }));
    const timeline = buildTimeline(samples);
    return { since: since.toISOString(), until: until.toISOString(), samples: timeline.points, energyKWh: timeline.energyKWh, alwaysOnKWh: timeline.alwaysOnKWh, powerModel: { ...POWER_MODEL } };
  });

  // Server-sent events. Browsers read it with fetch() (EventSource cannot send the bearer
  // header, and the token must not go in the URL); the Accept header keeps plain clients
  // from opening a stream that never ends by mistake.
  app.get('/events', { schema: { tags, security: bearer, response: errorResponses } }, async (request: FastifyRequest, reply: FastifyReply) => {
    if (!(request.headers.accept ?? '').includes('text/event-stream')) {
      throw new ApiError(400, 'BAD_REQUEST', 'this is a stream of server-sent events: send "Accept: text/event-stream"');
    }
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    const send = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    streams.add(reply);
    // Events are held back until hello is out; hello is sent once the feed knows where the
    // audit trail ends, so a client sees every change made after it got hello.
    let held: FeedEvent[] | null = [];
    const unsubscribe = feed.subscribe((e: FeedEvent) => (held ? held.push(e) : send(e.type, e)));
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), keepAliveMs);
    res.on('close', () => {
      clearInterval(keepAlive);
      unsubscribe();
      streams.delete(reply);
    });
    await feed.whenPrimed();
    send('hello', { at: clock.now().toISOString() });
    for (const e of held) send(e.type, e);
    held = null;
  });
};

/** The page's files, kept beside the sources (tsc does not copy them; dist/ resolves to the same place). */
const STATIC_DIR = fileURLToPath(new URL('../../src/dashboard/static/', import.meta.url));
const PAGES = new Map<string, { file: string; type: string }>([
  ['', { file: 'index.html', type: 'text/html; charset=utf-8' }],
  ['dashboard.js', { file: 'dashboard.js', type: 'text/javascript; charset=utf-8' }],
  ['dashboard.css', { file: 'dashboard.css', type: 'text/css; charset=utf-8' }],
]);

/** GET /dashboard: the page itself (public: it holds no data; it asks for a token). */
export const dashboardPageRoutes: FastifyPluginAsync = async (app) => {
  const cache = new Map<string, Buffer>();
  const serve = async (name: string, reply: FastifyReply) => {
    const page = PAGES.get(name);
    if (!page) throw new ApiError(404, 'NOT_FOUND', 'no such dashboard file');
    let body = cache.get(page.file);
    if (!body) cache.set(page.file, (body = await readFile(STATIC_DIR + page.file)));
    return reply
      .header('content-type', page.type)
      .header('cache-control', 'no-cache')
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('content-security-policy', "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'")
      .send(body);
  };
  app.get('/dashboard', { schema: { hide: true } }, (_request, reply) => serve('', reply));
  app.get('/dashboard/', { schema: { hide: true } }, (_request, reply) => serve('', reply));
  app.get('/dashboard/:file', { schema: { hide: true } }, (request, reply) => serve((request.params as { file: string }).file, reply));
};
