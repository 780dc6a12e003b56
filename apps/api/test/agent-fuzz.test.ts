// The agent protocol over a real WebSocket under generated frames: malformed, mutated, hostile
// (unicode, huge, deeply nested), replayed and out-of-order, and frames that speak for another
// host's operations and tasks. Every frame is answered (ack or error), the connection and the
// process stay up, nothing is a server error, and a refused frame changes nothing in the database.
import { AGENT_PROTOCOL_VERSION, MAX_AGENT_FRAME_BYTES } from '@deskpool/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { changeCount, changedTables, connectAgent, databaseDigest, runAgentFuzz, settled, startFuzzTarget, type FuzzTarget } from './fuzz-kit.js';

/** CI's short form; the bench runs the long one. */
const CASES = Number(process.env.DESKPOOL_FUZZ_AGENT_CASES ?? 1000);
const SEED = Number(process.env.DESKPOOL_FUZZ_SEED ?? Date.now() % 2 ** 31);

let target: FuzzTarget;
beforeAll(async () => {
  target = await startFuzzTarget();
});
afterAll(async () => {
  await target?.close();
});

async function healthy(): Promise<number> {
  return (await fetch(`${target.url}/healthz`)).status;
}

describe('agent protocol fuzzing', () => {
  it(`answers ${CASES} generated frames one by one, keeps serving, refuses foreign ones and changes nothing when it refuses (seed ${SEED})`, async () => {
    const tally = await runAgentFuzz(target, { count: CASES, seed: SEED, stopAt: 5 });
    expect(tally.findings, `seed ${SEED}`).toEqual([]);
    expect(tally.cases).toBe(CASES);
    expect(tally.accepted).toBeGreaterThan(0);
    expect(tally.byRoute.foreign).toBeGreaterThan(0);
    expect(await healthy()).toBe(200);
    // Host B's operations are untouched by everything host A sent.
    const ops = await target.db.prisma.operation.findMany({ where: { hostId: target.hostB.id } });
    expect(ops.every((o) => o.status === 'sent' || o.status === 'running')).toBe(true);
  }, 300_000);

  it('refuses the NUL character anywhere in a frame, naming where (it once reached PostgreSQL as a server error)', async () => {
    const socket = await connectAgent(target);
    await settled(target.db);
    const count = await changeCount(target.db);
    const frames = [
      { type: 'op-result', seq: 61, at: '2026-11-26T10:00:00.000Z', idempotencyKey: 'op-\u0000x', outcome: 'failed', replayed: false, error: { code: 'X', message: 'y' } },
      { type: 'op-result', seq: 62, at: '2026-11-26T10:00:00.000Z', idempotencyKey: 'op-nothing-00001', outcome: 'failed', replayed: false, error: { code: 'X', message: 'bad\u0000news' } },
      { type: 'events-dropped', seq: 63, at: '2026-11-26T10:00:00.000Z', count: 1, oldestAt: '2026-11-26T10:00:00.000Z', newestAt: '2026-11-26T10:00:00.000Z', countsByType: { ['pre\u0000sence']: 1 } },
    ];
    for (const frame of frames) {
      socket.ws.send(JSON.stringify(frame));
      expect(await socket.next()).toMatchObject({ type: 'error', code: 'MALFORMED_FRAME', refSeq: frame.seq, message: expect.stringMatching(/NUL/) });
    }
    expect(socket.ws.readyState).toBe(WebSocket.OPEN);
    expect(await changeCount(target.db)).toBe(count);
    socket.close();
  });

  it('refuses half of a surrogate pair anywhere in a frame, naming where (seed 419629037 got a server error for it)', async () => {
    const socket = await connectAgent(target);
    await settled(target.db);
    const count = await changeCount(target.db);
    const frames = [
      { type: 'op-result', seq: 71, at: '2026-11-26T10:00:00.000Z', idempotencyKey: '\ud800', outcome: 'failed', replayed: false, error: { code: 'X', message: 'y' } },
      { type: 'op-result', seq: 72, at: '2026-11-26T10:00:00.000Z', idempotencyKey: 'op-nothing-00002', outcome: 'failed', replayed: false, error: { code: 'X', message: 'bad\udc00news' } },
    ];
    for (const frame of frames) {
      socket.ws.send(JSON.stringify(frame));
      expect(await socket.next()).toMatchObject({ type: 'error', code: 'MALFORMED_FRAME', refSeq: frame.seq, message: expect.stringMatching(/surrogate/) });
    }
    expect(socket.ws.readyState).toBe(WebSocket.OPEN);
    expect(await changeCount(target.db)).toBe(count);
    socket.close();
  });

  it('treats a replayed frame as already applied: acked again, nothing written twice', async () => {
    const socket = await connectAgent(target);
    const frame = JSON.stringify({ type: 'presence', seq: 41, at: '2026-11-26T10:00:00.000Z', state: 'present', idleSince: null, source: 'evdev' });
    socket.ws.send(frame);
    expect(await socket.next()).toEqual({ type: 'ack', seq: 41 });
    await settled(target.db);
    const [count, digest] = [await changeCount(target.db), await databaseDigest(target.db)];
    for (let i = 0; i < 3; i++) {
      socket.ws.send(frame);
      expect(await socket.next()).toEqual({ type: 'ack', seq: 41 });
    }
    expect(await changeCount(target.db)).toBe(count);
    expect(changedTables(digest, await databaseDigest(target.db))).toEqual([]);
    socket.close();
  });

  it('closes a connection that sends a frame beyond four times the limit, and serves the next one', async () => {
    const socket = await connectAgent(target);
    const closed = new Promise<number>((resolve) => socket.ws.once('close', (code) => resolve(code)));
    socket.ws.send(JSON.stringify({ type: 'inventory', seq: 1, pad: 'x'.repeat(MAX_AGENT_FRAME_BYTES * 4 + 10) }));
    expect(await closed).toBe(1009);
    const again = await connectAgent(target);
    again.ws.send(JSON.stringify({ type: 'heartbeat', seq: 1, at: '2026-11-26T10:00:00.000Z', uptimeSeconds: 1 }));
    expect(await again.next()).toEqual({ type: 'ack', seq: 1 });
    again.close();
    expect(await healthy()).toBe(200);
  });

  it('refuses frames before hello, an unsupported protocol version, and credentials that are not a host\'s', async () => {
    const raw = new WebSocket(`ws://127.0.0.1:${target.port}/api/v1/agent/ws`, { headers: { authorization: `Bearer ${target.hostA.credential}` } });
    const replies: Record<string, unknown>[] = [];
    raw.on('message', (d: Buffer) => replies.push(JSON.parse(d.toString()) as Record<string, unknown>));
    await new Promise((resolve, reject) => (raw.once('open', resolve), raw.once('error', reject)));
    await settled(target.db);
    const count = await changeCount(target.db);
    raw.send(JSON.stringify({ type: 'presence', seq: 1, at: '2026-11-26T10:00:00.000Z', state: 'present', idleSince: null, source: 'evdev' }));
    await expect.poll(() => replies.length).toBe(1);
    expect(replies[0]).toMatchObject({ type: 'error', code: 'HELLO_REQUIRED' });
    const closed = new Promise<number>((resolve) => raw.once('close', (code) => resolve(code)));
    raw.send(JSON.stringify({ type: 'hello', protocolVersion: AGENT_PROTOCOL_VERSION + 1000, agentVersion: 'future' }));
    await expect.poll(() => replies.length).toBe(2);
    expect(replies[1]).toMatchObject({ type: 'error', code: 'UNSUPPORTED_VERSION', fatal: true });
    expect(await closed).toBe(1008);
    expect(await changeCount(target.db)).toBe(count);

    for (const bad of ['dph_not-a-credential', target.tokens.admin, `${target.hostA.credential}x`]) {
      const refused = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const ws = new WebSocket(`ws://127.0.0.1:${target.port}/api/v1/agent/ws`, { headers: { authorization: `Bearer ${bad}` } });
        ws.once('open', () => reject(new Error(`connected with ${bad.slice(0, 8)}…`)));
        ws.once('unexpected-response', (_req, res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
      });
      expect(refused.status).toBe(401);
      expect(JSON.parse(refused.body)).toMatchObject({ error: { code: 'UNAUTHORIZED' } });
    }
    expect(await changeCount(target.db)).toBe(count);
  });
});
