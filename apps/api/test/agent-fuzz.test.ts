// Malformed and mutated agent frames against the real gateway: every one is answered (error
// frame or ack), and the connection and the process stay up.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import WebSocket from 'ws';
import { AGENT_PROTOCOL_VERSION, type DownFrame } from '@deskpool/protocol';
import { startApi, type ApiUnderTest } from './agent-harness.js';
import { generateSecret, hashSecret, SECRET_PREFIX } from '../src/secrets.js';

const CASES = 2000;

describe('agent gateway under malformed frames', () => {
  let api: ApiUnderTest;
  let credential: string;
  let hostId: string;
  beforeAll(async () => {
    api = await startApi();
    const host = await api.db.prisma.host.create({ data: { name: `fuzz-${randomUUID().slice(0, 8)}`, poolId: api.poolId } });
    hostId = host.id;
    credential = generateSecret(SECRET_PREFIX.hostCredential);
    await api.db.prisma.hostCredential.create({ data: { hostId, secretHash: hashSecret(credential) } });
  });
  afterAll(async () => api?.close());

  it(`answers ${CASES} malformed frames one by one and keeps serving`, async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${api.port}/api/v1/agent/ws`, { headers: { authorization: `Bearer ${credential}` } });
    const replies: DownFrame[] = [];
    ws.on('message', (d: Buffer) => replies.push(JSON.parse(d.toString()) as DownFrame));
    await new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject)));
    ws.send(JSON.stringify({ type: 'hello', protocolVersion: AGENT_PROTOCOL_VERSION, agentVersion: 'fuzz' }));
    await expect.poll(() => replies.length).toBe(1);

    const valid = [
      { type: 'presence', seq: 1, at: '2026-11-26T09:00:00.000Z', state: 'idle', idleSince: '2026-11-26T08:00:00.000Z', source: 'evdev' },
      { type: 'op-result', seq: 1, at: '2026-11-26T09:00:00.000Z', idempotencyKey: 'op-nothing-1', outcome: 'failed', replayed: false, error: { code: 'X', message: 'y' } },
      { type: 'inventory', seq: 1, at: '2026-11-26T09:00:00.000Z', inventory: { hostname: 'x' } },
      { type: 'domain-state', seq: 1, at: '2026-11-26T09:00:00.000Z', domains: [{ domainName: 'd', state: 'running' }] },
    ];
    // Valid frames with one field replaced by arbitrary JSON, plus raw junk.
    const mutated = fc.tuple(fc.constantFrom(...valid), fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 2 })).map(([frame, key, value]) => {
      const keys = Object.keys(frame);
      const k = key.length % 2 === 0 ? (keys[key.length % keys.length] ?? key) : key;
      return JSON.stringify({ ...frame, [k]: value, seq: 1 });
    });
    const junk = fc.oneof(fc.string({ maxLength: 200 }), fc.json({ maxDepth: 3 }), fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a).toString('latin1')));
    const samples = fc.sample(fc.oneof(mutated, junk), CASES);
    for (const [i, raw] of samples.entries()) {
      const before = replies.length;
      const answered = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no answer to case ${i}: ${raw.slice(0, 200)}`)), 5_000);
        ws.once('message', () => (clearTimeout(timer), resolve()));
      });
      ws.send(raw);
      await answered;
      expect(['error', 'ack'], `case ${i}`).toContain(replies[before]?.type);
    }
    expect(ws.readyState).toBe(WebSocket.OPEN);
    const res = await fetch(`${api.url}/healthz`);
    expect(res.status).toBe(200);
    ws.close();
  }, 300_000);
});
