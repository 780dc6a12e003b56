import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { AGENT_PROTOCOL_VERSION, MAX_AGENT_FRAME_BYTES, type CommandFrame, type UpFrame } from '@deskpool/protocol';
import type { AgentRejected } from '../src/channel/client.js';
import { AgentChannel } from '../src/channel/client.js';
import { Outbox } from '../src/channel/outbox.js';
import { systemClock } from '../src/clock.js';

/** A stand-in control plane speaking raw frames, to see how the agent's channel answers. */
async function fakeApi(onConnection: (ws: WebSocket, frames: UpFrame[], headers: Record<string, unknown>) => void) {
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await once(server, 'listening');
  server.on('connection', (ws, req) => {
    const frames: UpFrame[] = [];
    ws.on('message', (d: Buffer) => frames.push(JSON.parse(d.toString()) as UpFrame));
    onConnection(ws, frames, req.headers);
  });
  const port = (server.address() as AddressInfo).port;
  return { url: `ws://127.0.0.1:${port}/api/v1/agent/ws`, close: () => new Promise<void>((r) => server.close(() => r())), server };
}

const hello = (hostId = 'h-1') => JSON.stringify({ type: 'hello', protocolVersion: AGENT_PROTOCOL_VERSION, hostId, heartbeatIntervalSeconds: 15 });

describe('agent channel', () => {
  let cleanup: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanup.reverse()) await c();
    cleanup = [];
  });

  function channel(url: string, extra: Partial<ConstructorParameters<typeof AgentChannel>[0]> = {}) {
    const commands: CommandFrame[] = [];
    const rejected: AgentRejected[] = [];
    const outbox = new Outbox(100);
    const ch = new AgentChannel({
      url,
      credential: 'dph_test_credential_123456',
      agentVersion: 'test',
      backoff: { initialMs: 20, maxMs: 100 },
      outbox,
      clock: systemClock,
      onCommand: (c) => commands.push(c),
      onConnected: () => undefined,
      onRejected: (e) => rejected.push(e),
      log: () => undefined,
      ...extra,
    });
    cleanup.push(() => ch.stop());
    return { ch, commands, rejected, outbox };
  }

  it('says hello with its version and credential, then hands over commands', async () => {
    let headers: Record<string, unknown> = {};
    let seen: UpFrame[] = [];
    const api = await fakeApi((ws, frames, h) => {
      headers = h;
      seen = frames;
      ws.send(hello());
      ws.send(JSON.stringify({ type: 'command', idempotencyKey: 'op-00000001', kind: 'suspend', target: { vmId: 'v', domainName: 'd', generation: 1 }, params: {} }));
    });
    cleanup.push(api.close);
    const { ch, commands } = channel(api.url);
    ch.start();
    await expect.poll(() => commands.length).toBe(1);
    expect(headers.authorization).toBe('Bearer dph_test_credential_123456');
    await expect.poll(() => seen[0]).toEqual({ type: 'hello', protocolVersion: AGENT_PROTOCOL_VERSION, agentVersion: 'test' });
  });

  it('answers garbage, unknown commands and oversized frames from the API with error frames and stays up', async () => {
    let seen: UpFrame[] = [];
    const api = await fakeApi((ws, frames) => {
      seen = frames;
      ws.send(hello());
      ws.send('{{{');
      ws.send(JSON.stringify({ type: 'command', idempotencyKey: 'op-00000002', kind: 'format-disk', target: { vmId: 'v', domainName: 'd', generation: 1 }, params: {} }));
      ws.send(JSON.stringify({ type: 'command', idempotencyKey: 'op-00000003', kind: 'suspend', params: {} }));
      ws.send(JSON.stringify({ type: 'ack', seq: 1, extra: 'x'.repeat(MAX_AGENT_FRAME_BYTES) }));
      ws.send(JSON.stringify({ type: 'command', idempotencyKey: 'op-00000004', kind: 'restore', target: { vmId: 'v', domainName: 'd', generation: 1 }, params: {} }));
    });
    cleanup.push(api.close);
    const { ch, commands } = channel(api.url);
    ch.start();
    await expect.poll(() => commands.length).toBe(1);
    expect(commands[0]?.idempotencyKey).toBe('op-00000004');
    await expect.poll(() => seen.filter((f) => f.type === 'error').length).toBe(4);
    expect(seen.filter((f) => f.type === 'error').map((f) => (f.type === 'error' ? [f.code, f.refIdempotencyKey] : null))).toEqual([
      ['MALFORMED_FRAME', undefined],
      ['UNKNOWN_COMMAND', 'op-00000002'],
      ['INVALID_COMMAND', 'op-00000003'],
      ['FRAME_TOO_LARGE', undefined],
    ]);
    expect(ch.connected).toBe(true);
  });

  it('refuses a server speaking another protocol version and gives up', async () => {
    let seen: UpFrame[] = [];
    const api = await fakeApi((ws, frames) => {
      seen = frames;
      ws.send(JSON.stringify({ type: 'hello', protocolVersion: 42, hostId: 'h', heartbeatIntervalSeconds: 15 }));
    });
    cleanup.push(api.close);
    const { ch, rejected } = channel(api.url);
    ch.start();
    await expect.poll(() => seen.some((f) => f.type === 'error' && f.code === 'UNSUPPORTED_VERSION')).toBe(true);
    await expect.poll(() => rejected.map((r) => r.code)).toEqual(['UNSUPPORTED_VERSION']);
  });

  it('keeps unacknowledged frames and re-sends them in order after a reconnect', async () => {
    const connections: UpFrame[][] = [];
    const api = await fakeApi((ws, frames) => {
      connections.push(frames);
      ws.send(hello());
      if (connections.length === 1) {
        // Ack only the first frame, then drop the connection.
        ws.on('message', () => {
          if (frames.length === 2) ws.send(JSON.stringify({ type: 'ack', seq: 1 }));
          if (frames.length === 4) ws.terminate();
        });
      }
    });
    cleanup.push(api.close);
    const { ch, outbox } = channel(api.url);
    ch.start();
    await expect.poll(() => ch.connected).toBe(true);
    for (const user of ['a', 'b', 'c']) ch.send({ type: 'signin', at: new Date().toISOString(), user });
    await expect.poll(() => connections.length).toBe(2);
    await expect.poll(() => connections[1]?.filter((f) => f.type === 'signin').length).toBe(2);
    expect(connections[1]?.filter((f) => f.type === 'signin').map((f) => (f.type === 'signin' ? [f.seq, f.user] : null))).toEqual([
      [2, 'b'],
      [3, 'c'],
    ]);
    expect(outbox.size).toBe(2);
  });

  it('stops for good when the API refuses its credential', async () => {
    const { createServer } = await import('node:http');
    let attempts = 0;
    const server = createServer((_req, res) => res.end()).on('upgrade', (_req, socket) => {
      attempts++;
      const body = JSON.stringify({ error: { code: 'CREDENTIAL_REVOKED', message: 'revoked at noon' } });
      socket.end(`HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanup.push(() => new Promise<void>((r) => server.close(() => r())));
    const { ch, rejected } = channel(`ws://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/agent/ws`);
    ch.start();
    await expect.poll(() => rejected.length).toBe(1);
    expect(rejected[0]).toMatchObject({ code: 'CREDENTIAL_REVOKED', message: 'revoked at noon' });
    await new Promise((r) => setTimeout(r, 300));
    expect(attempts).toBe(1);
  });
});
