// The worker as a process (dist/worker.js, as docker-compose runs it) on real Postgres and Redis.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SchedulerEvents } from '../src/runtime/queues.js';
import { parseWorkerEnv, timerEnvName } from '../src/worker.js';
import { createOffice, eventually, NIGHT, REDIS_URL, startServices, type TestServices } from './runtime-fixtures.js';

const WORKER = fileURLToPath(new URL('../dist/worker.js', import.meta.url));

let s: TestServices;
beforeAll(async () => {
  if (!existsSync(WORKER)) throw new Error(`${WORKER} is missing: build first (npx tsc -b packages/scheduler)`);
  s = await startServices();
});
afterAll(async () => {
  await s?.close();
});

function startWorker(env: Record<string, string>): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [WORKER], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

describe('worker environment', () => {
  it('names every bad variable', () => {
    const result = parseWorkerEnv({ DATABASE_URL: 'mysql://x', DESKPOOL_WORKER_CONCURRENCY: '0', [timerEnvName('idleCheck')]: 'soon' });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    const text = result.problems.join('\n');
    expect(text).toContain('DATABASE_URL');
    expect(text).toContain('REDIS_URL');
    expect(text).toContain('DESKPOOL_WORKER_CONCURRENCY');
    expect(text).toContain('DESKPOOL_TIMER_IDLE_CHECK_MS');
  });

  it('fills defaults for everything but the two URLs', () => {
    const result = parseWorkerEnv({ DATABASE_URL: 'postgresql://a@b/c', REDIS_URL: 'redis://r:6379' });
    expect(result).toMatchObject({ ok: true, env: { DESKPOOL_WORKER_CONCURRENCY: 4, DESKPOOL_QUEUE_PREFIX: 'deskpool', DESKPOOL_TIMER_HEARTBEAT_CHECK_MS: 15_000 } });
  });

  it('honours the test-only switch that disables fencing only with NODE_ENV=test', () => {
    const base = { DATABASE_URL: 'postgresql://a@b/c', REDIS_URL: 'redis://r:6379', DESKPOOL_UNSAFE_DISABLE_FENCING: '1' };
    const refused = parseWorkerEnv({ ...base, NODE_ENV: 'production' });
    expect(refused.ok).toBe(false);
    if (!refused.ok) expect(refused.problems.join('\n')).toContain('DESKPOOL_UNSAFE_DISABLE_FENCING');
    expect(parseWorkerEnv(base).ok).toBe(false);
    expect(parseWorkerEnv({ ...base, NODE_ENV: 'test' })).toMatchObject({ ok: true, env: { DESKPOOL_UNSAFE_DISABLE_FENCING: '1' } });
    expect(parseWorkerEnv({ ...base, DESKPOOL_UNSAFE_DISABLE_FENCING: 'yes', NODE_ENV: 'test' }).ok).toBe(false);
  });

  it('the process refuses to start with a bad environment and says why', async () => {
    const w = startWorker({ REDIS_URL: 'nope' });
    expect(await w.exited).toBe(2);
    expect(w.output()).toContain('DATABASE_URL');
    expect(w.output()).toContain('REDIS_URL');
  });
});

describe('worker process', () => {
  it('handles a queued event and stops cleanly on SIGTERM', async () => {
    const office = await createOffice(s.prisma, { now: NIGHT, presence: 'present' });
    const w = startWorker({
      DATABASE_URL: s.db.url,
      REDIS_URL,
      DESKPOOL_QUEUE_PREFIX: s.queuePrefix,
      DESKPOOL_AGENT_CHANNEL_PREFIX: s.channelPrefix,
      DESKPOOL_SCHEDULE_TIMERS: 'false',
      DESKPOOL_AGENT_EVENT_STREAM: `${s.tag}:agentgw:events`,
      LOG_LEVEL: 'info',
    });
    const connection = s.redis.duplicate();
    const events = new SchedulerEvents({ connection, prefix: s.queuePrefix });
    try {
      await events.publishHeartbeatLost({ hostId: office.hostId, lastHeartbeatAt: NIGHT });
      await eventually(async () => (await s.prisma.desktopVm.findUniqueOrThrow({ where: { id: office.vmId } })).state === 'LOST', `the worker to mark the desktop LOST (output: ${w.output()})`, 30_000);
      w.child.kill('SIGTERM');
      expect(await w.exited).toBe(0);
      expect(w.output()).toContain('scheduler worker started');
      expect(w.output()).toContain('stopped');
    } finally {
      if (w.child.exitCode === null) w.child.kill('SIGKILL');
      await events.close();
      connection.disconnect();
    }
  });
});
