import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { reconnectDelay } from '../src/channel/backoff.js';
import { Outbox } from '../src/channel/outbox.js';
import { ConfigInvalid, channelUrlOf, loadConfig } from '../src/config.js';

const at = (n: number) => new Date(Date.UTC(2026, 10, 26, 9, 0, n)).toISOString();

describe('outbox', () => {
  it('numbers frames in order and forgets acknowledged ones', () => {
    const o = new Outbox(10);
    o.enqueue({ type: 'signin', at: at(0), user: 'alice' });
    o.enqueue({ type: 'heartbeat', at: at(1), uptimeSeconds: 1 });
    expect(o.unacknowledged().map((f) => f.seq)).toEqual([1, 2]);
    o.acknowledge(1);
    expect(o.unacknowledged().map((f) => f.seq)).toEqual([2]);
  });

  it('when full, summarizes the oldest events and keeps op results and the newest state', () => {
    const o = new Outbox(4);
    o.enqueue({ type: 'op-result', at: at(0), idempotencyKey: 'op-00000001', outcome: 'succeeded', replayed: false });
    for (let i = 1; i <= 6; i++) o.enqueue({ type: 'presence', at: at(i), state: i % 2 ? 'present' : 'idle', idleSince: i % 2 ? null : at(i - 1), source: 'fifo' });
    const frames = o.unacknowledged();
    expect(frames).toHaveLength(4);
    expect(frames[0]).toMatchObject({ type: 'events-dropped', count: 4, oldestAt: at(1), newestAt: at(4), countsByType: { presence: 4 } });
    expect(frames.slice(1).map((f) => f.type)).toEqual(['op-result', 'presence', 'presence']);
    expect(frames.at(-1)).toMatchObject({ at: at(6) });
  });

  it('never exceeds its capacity and accounts for every dropped event (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 20 }), fc.array(fc.boolean(), { maxLength: 100 }), (capacity, kinds) => {
        const o = new Outbox(capacity);
        kinds.forEach((isResult, i) =>
          o.enqueue(isResult ? { type: 'op-result', at: at(i % 60), idempotencyKey: `op-${String(i).padStart(8, '0')}`, outcome: 'succeeded', replayed: false } : { type: 'signin', at: at(i % 60), user: 'u' }),
        );
        const frames = o.unacknowledged();
        expect(frames.length).toBe(Math.min(capacity, kinds.length));
        const dropped = frames[0]?.type === 'events-dropped' ? frames[0].count : 0;
        expect(frames.filter((f) => f.type !== 'events-dropped').length + dropped).toBe(kinds.length);
      }),
    );
  });
});

describe('reconnect backoff', () => {
  it('grows exponentially up to the cap, with jitter inside the window', () => {
    const policy = { initialMs: 100, maxMs: 5_000 };
    expect(reconnectDelay(0, policy, () => 0)).toBe(50);
    expect(reconnectDelay(3, policy, () => 1)).toBe(800);
    expect(reconnectDelay(50, policy, () => 1)).toBe(5_000);
    fc.assert(fc.property(fc.nat(100), fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }), (attempt, r) => {
      const d = reconnectDelay(attempt, policy, () => r);
      expect(d).toBeGreaterThanOrEqual(50);
      expect(d).toBeLessThanOrEqual(5_000);
    }));
  });
});

describe('agent config', () => {
  it('layers file, env and flags, later ones winning, and fills defaults', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'dp-agent-config-'));
    try {
      const file = path.join(dir, 'agent.json');
      writeFileSync(file, JSON.stringify({ serverUrl: 'http://file.example:1', stateDir: '/from/file', idleThresholdSeconds: 60 }));
      const config = await loadConfig({ file, env: { DESKPOOL_AGENT_STATE_DIR: '/from/env', DESKPOOL_AGENT_DRIVER: '{"kind":"simulated"}' }, flags: { serverUrl: 'https://flag.example', stateDir: undefined } });
      expect(config).toMatchObject({ serverUrl: 'https://flag.example', stateDir: '/from/env', idleThresholdSeconds: 60, driver: { kind: 'simulated' }, heartbeatIntervalSeconds: 15 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names the bad key', async () => {
    const err = await loadConfig({ env: { DESKPOOL_SERVER_URL: 'ftp://x', DESKPOOL_AGENT_IDLE_THRESHOLD_SECONDS: '-3' } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigInvalid);
    expect((err as ConfigInvalid).issues.map((i) => i.path).sort()).toEqual(['idleThresholdSeconds', 'serverUrl']);
    await expect(loadConfig({ env: { DESKPOOL_SERVER_URL: 'http://x', DESKPOOL_AGENT_DRIVER: '{nope' } })).rejects.toThrow(/DESKPOOL_AGENT_DRIVER/);
  });

  it('derives the channel URL', () => {
    expect(channelUrlOf('https://dp.example/')).toBe('wss://dp.example/api/v1/agent/ws');
    expect(channelUrlOf('http://127.0.0.1:8080')).toBe('ws://127.0.0.1:8080/api/v1/agent/ws');
  });
});
