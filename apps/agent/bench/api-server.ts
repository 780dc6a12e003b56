// The API side of the agents10k bench, in its own process so its memory can be read alone:
// the real app with the agent gateway, on the bench's own Redis prefixes. With BENCH_QUEUE_PREFIX
// the gateway hands presence and other agent events to the scheduler's queue, as deskpool-api does.
import { createPrisma } from '@deskpool/db';
import { SchedulerEvents } from '@deskpool/scheduler';
import { Redis } from 'ioredis';
import { createAgentGateway } from '../../api/src/agent/index.js';
import { buildApp } from '../../api/src/app.js';

const { DATABASE_URL, REDIS_URL, BENCH_PREFIX, BENCH_QUEUE_PREFIX } = process.env;
if (!DATABASE_URL || !REDIS_URL || !BENCH_PREFIX) throw new Error('DATABASE_URL, REDIS_URL and BENCH_PREFIX are required');
const prisma = createPrisma(DATABASE_URL);
const redis = new Redis(REDIS_URL);
const events = BENCH_QUEUE_PREFIX ? new SchedulerEvents({ connection: { url: REDIS_URL, maxRetriesPerRequest: null }, prefix: BENCH_QUEUE_PREFIX }) : undefined;
const gateway = createAgentGateway({ prisma, redis, channelPrefix: `${BENCH_PREFIX}agent:`, keyPrefix: BENCH_PREFIX, helloTimeoutMs: 120_000, ...(events ? { events } : {}) });
const app = await buildApp({ logLevel: false }, { prisma, redis, agentRoutes: gateway.plugin });
await app.listen({ port: 0, host: '127.0.0.1' });
const address = app.server.address();
process.stdout.write(`${JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 })}\n`);
process.on('SIGTERM', () => {
  void app
    .close()
    .then(() => events?.queue.close())
    .then(() => process.exit(0));
});
