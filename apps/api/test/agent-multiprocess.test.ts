// Two API processes (two apps on their own ports, sharing PostgreSQL and Redis) and one agent
// that reconnects from one to the other: the newer connection wins everywhere, commands reach
// it through Redis whichever process they are sent from, and a late close of the old socket
// does not mark the host offline.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { AGENT_PROTOCOL_VERSION, type DownFrame } from '@deskpool/protocol';
import { createAgentGateway, type AgentGateway } from '../src/agent/index.js';
import { buildApp } from '../src/app.js';
import { generateSecret, hashSecret, SECRET_PREFIX } from '../src/secrets.js';
import { startApi, type ApiUnderTest } from './agent-harness.js';
import type { FastifyInstance } from 'fastify';

describe('agent gateway across API processes', () => {
  let api: ApiUnderTest;
  let second: { app: FastifyInstance; gateway: AgentGateway; port: number };
  let hostId: string;
  let credential: string;

  beforeAll(async () => {
    api = await startApi();
    const gateway = createAgentGateway({ prisma: api.db.prisma, redis: api.redis, channelPrefix: `${api.prefix}agent:`, keyPrefix: api.prefix });
    const app = await buildApp({ logLevel: false }, { prisma: api.db.prisma, redis: api.redis, agentRoutes: gateway.plugin });
    await app.listen({ port: 0, host: '127.0.0.1' });
    second = { app, gateway, port: (app.server.address() as { port: number }).port };
    hostId = (await api.db.prisma.host.create({ data: { name: `mp-${randomUUID().slice(0, 8)}`, poolId: api.poolId } })).id;
    credential = generateSecret(SECRET_PREFIX.hostCredential);
    await api.db.prisma.hostCredential.create({ data: { hostId, secretHash: hashSecret(credential) } });
  });
  afterAll(async () => {
    await second?.app.close();
    await api?.close();
  });

  async function connect(port: number) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/api/v1/agent/ws`, { headers: { authorization: `Bearer ${credential}` } });
    const frames: DownFrame[] = [];
    const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
    ws.on('message', (d: Buffer) => frames.push(JSON.parse(d.toString()) as DownFrame));
    await new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject)));
    ws.send(JSON.stringify({ type: 'hello', protocolVersion: AGENT_PROTOCOL_VERSION, agentVersion: 'test' }));
    await expect.poll(() => frames.some((f) => f.type === 'hello')).toBe(true);
    return { ws, frames, closed };
  }
  const host = () => api.db.prisma.host.findUniqueOrThrow({ where: { id: hostId } });

  it('moves the agent to the newer connection and keeps the host online', async () => {
    const first = await connect(api.port);
    expect((await host()).onlineState).toBe('online');
    const again = await connect(second.port);
    expect(await first.closed).toBe(4000);
    expect(api.gateway.registry.isConnectedHere(hostId)).toBe(false);
    expect(second.gateway.registry.isConnectedHere(hostId)).toBe(true);
    // The old socket's close has been handled (the audit says who connected); the host stays online.
    await expect.poll(async () => (await api.db.prisma.auditEvent.count({ where: { entityId: hostId, action: 'agent.connected' } }))).toBe(2);
    await new Promise((r) => setTimeout(r, 300));
    expect((await host()).onlineState).toBe('online');
    expect(await api.db.prisma.auditEvent.count({ where: { entityId: hostId, action: 'agent.disconnected' } })).toBe(0);

    // A command sent from the first process reaches the agent on the second.
    expect(await api.gateway.sendCommand(hostId, { type: 'command', idempotencyKey: 'op-mp-000001', kind: 'suspend', target: { vmId: 'v', domainName: 'd', generation: 1 }, params: {} })).toBe('published');
    await expect.poll(() => again.frames.some((f) => f.type === 'command' && f.idempotencyKey === 'op-mp-000001')).toBe(true);

    again.ws.close();
    await expect.poll(async () => (await host()).onlineState).toBe('offline');
  });
});
