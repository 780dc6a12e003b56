// End to end: a real API on a port (real PostgreSQL, Redis) and a real deskpool-agent process.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { AGENT_PROTOCOL_VERSION, MAX_AGENT_FRAME_BYTES, type DownFrame } from '@deskpool/protocol';
import { buildAgent, createEnrollmentToken, runAgentCli, startApi, tempDir, type AgentProcess, type ApiUnderTest } from './agent-harness.js';

/** One kernel input_event: a key press (EV_KEY=1, KEY_A=30, value 1). */
function keyPress(): Buffer {
  const buf = Buffer.alloc(24);
  const now = BigInt(Date.now()) * 1000n;
  buf.writeBigInt64LE(now / 1_000_000n, 0);
  buf.writeBigInt64LE(now % 1_000_000n, 8);
  buf.writeUInt16LE(1, 16);
  buf.writeUInt16LE(30, 18);
  buf.writeInt32LE(1, 20);
  return buf;
}

describe('agent gateway with a real agent process', () => {
  let api: ApiUnderTest;
  let state: { dir: string; remove(): void };
  let fifo: string;
  let hostId: string;
  let credential: string;
  let agent: AgentProcess | undefined;

  const agentEnv = (): Record<string, string> => ({
    DESKPOOL_SERVER_URL: api.url,
    DESKPOOL_AGENT_STATE_DIR: state.dir,
    DESKPOOL_AGENT_PRESENCE_SOURCES: JSON.stringify([{ kind: 'fifo', path: fifo }]),
    DESKPOOL_AGENT_DRIVER: JSON.stringify({ kind: 'libvirt', uri: 'qemu:///system' }),
    // Time runs 10x: a 20 s idle threshold passes in 2 s, the API's 15 s heartbeat in 1.5 s.
    DESKPOOL_AGENT_CLOCK_SPEED: '10',
    DESKPOOL_AGENT_IDLE_THRESHOLD_SECONDS: '20',
    DESKPOOL_AGENT_RECONNECT_INITIAL_MS: '1000',
    DESKPOOL_AGENT_RECONNECT_MAX_MS: '5000',
  });
  const host = () => api.db.prisma.host.findUniqueOrThrow({ where: { id: hostId } });
  const auditActions = async () => (await api.db.prisma.auditEvent.findMany({ where: { entityId: hostId }, orderBy: { id: 'asc' } })).map((a) => ({ action: a.action, after: a.after }));
  const tap = () => {
    const fd = openSync(fifo, 'w');
    writeSync(fd, keyPress());
    closeSync(fd);
  };

  beforeAll(async () => {
    buildAgent();
    api = await startApi();
    state = tempDir('agent-state');
    fifo = path.join(state.dir, 'input.fifo');
    execFileSync('mkfifo', [fifo]);
  });

  afterAll(async () => {
    await agent?.kill('SIGKILL');
    await api?.close();
    state?.remove();
  });

  it('enrolls with a one-time token: host row in the token\'s pool, credential stored 0600 and only hashed on the server', async () => {
    const { token, id: tokenId } = await createEnrollmentToken(api);
    const run = runAgentCli(['enroll', '--token', token], agentEnv());
    expect(await run.exited, run.output()).toBe(0);
    expect(run.output()).toMatch(/enrolled as host/);
    const file = path.join(state.dir, 'credential.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const stored = JSON.parse(readFileSync(file, 'utf8')) as { hostId: string; credential: string };
    hostId = stored.hostId;
    credential = stored.credential;
    const row = await host();
    expect(row.poolId).toBe(api.poolId);
    expect(row.cores).toBeGreaterThan(0);
    expect((row.inventory as { hostname?: string }).hostname).toBeTruthy();
    const creds = await api.db.prisma.hostCredential.findMany({ where: { hostId } });
    expect(creds).toHaveLength(1);
    expect(creds[0]?.secretHash).toBe(createHash('sha256').update(credential).digest('hex'));
    expect(JSON.stringify(creds)).not.toContain(credential);
    const tokenRow = await api.db.prisma.enrollmentToken.findUniqueOrThrow({ where: { id: tokenId } });
    expect(tokenRow.usedByHostId).toBe(hostId);

    // The same token again: refused, and nothing changes.
    const again = runAgentCli(['enroll', '--token', token, '--state-dir', tempDir('agent-reuse').dir], agentEnv());
    expect(await again.exited).toBe(4);
    expect(again.output()).toMatch(/ENROLLMENT_TOKEN_USED/);
    expect(await api.db.prisma.hostCredential.count({ where: { hostId } })).toBe(1);
  });

  it('refuses an expired token and a revoked one, and names a malformed field', async () => {
    const expired = await createEnrollmentToken(api);
    await api.db.prisma.enrollmentToken.update({ where: { id: expired.id }, data: { expiresAt: new Date(Date.now() - 1000) } });
    const run = runAgentCli(['enroll', '--token', expired.token, '--state-dir', tempDir('agent-expired').dir], agentEnv());
    expect(await run.exited).toBe(4);
    expect(run.output()).toMatch(/ENROLLMENT_TOKEN_EXPIRED/);

    const revoked = await createEnrollmentToken(api);
    await fetch(`${api.url}/api/v1/enrollment-tokens/${revoked.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${api.adminToken}` } });
    const res = await fetch(`${api.url}/api/v1/agent/enroll`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: revoked.token, inventory: (await host()).inventory }) });
    expect(res.status).toBe(410);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('ENROLLMENT_TOKEN_REVOKED');

    const bad = await fetch(`${api.url}/api/v1/agent/enroll`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: 'x'.repeat(20), inventory: { hostname: '' } }) });
    expect(bad.status).toBe(400);
    const body = (await bad.json()) as { error: { code: string; details: { issues: { path: string[] }[] } } };
    expect(body.error.code).toBe('VALIDATION_FAILED');
    expect(body.error.details.issues.map((i) => i.path.join('.'))).toContain('inventory.hostname');
    expect(await api.db.prisma.host.count()).toBe(1);
  });

  it('connects, and a tap on the FIFO input makes the host present in the database', async () => {
    agent = runAgentCli(['run'], agentEnv());
    await expect.poll(async () => (await host()).onlineState, { timeout: 15_000 }).toBe('online');
    const before = Date.now();
    tap();
    await expect.poll(async () => (await host()).presenceState, { timeout: 10_000 }).toBe('present');
    expect((await host()).presenceSince?.getTime()).toBeGreaterThanOrEqual(before - 1000);
    // ... and the scheduler hears of it on its event queue.
    const queued = async () => (await api.schedulerEvents.queue.getJobs(['waiting', 'prioritized', 'delayed', 'active', 'completed'])).map((j) => j.data as object);
    await expect.poll(queued).toContainEqual(expect.objectContaining({ type: 'presence', hostId, presence: 'present' }));
  });

  it('turns idle after the threshold without input (accelerated clock), idle-since at the last input', async () => {
    // Times below are on the agent's clock, which runs ahead of real time.
    const presentSince = (await host()).presenceSince?.getTime() ?? 0;
    tap();
    await expect.poll(async () => (await host()).presenceState, { timeout: 15_000 }).toBe('idle');
    const idleSince = (await host()).presenceSince?.getTime() ?? 0;
    expect(idleSince).toBeGreaterThan(presentSince);
    tap();
    await expect.poll(async () => (await host()).presenceState, { timeout: 10_000 }).toBe('present');
    const actions = (await auditActions()).map((a) => a.action);
    expect(actions).toContain('presence.idle');
    expect(actions.filter((a) => a === 'presence.present').length).toBeGreaterThanOrEqual(2);
  });

  it('forwards a sign-in from the local socket (0600) to the audit trail and the scheduler', async () => {
    await api.db.prisma.user.create({ data: { name: 'alice' } });
    const socket = path.join(state.dir, 'agent.sock');
    expect(statSync(socket).mode & 0o777).toBe(0o600);
    const run = runAgentCli(['signin', '--user', 'alice', '--state-dir', state.dir], {});
    expect(await run.exited, run.output()).toBe(0);
    await expect.poll(async () => (await auditActions()).some((a) => a.action === 'signin' && (a.after as { user?: string }).user === 'alice'), { timeout: 10_000 }).toBe(true);
    const alice = await api.db.prisma.user.findUniqueOrThrow({ where: { name: 'alice' } });
    const queued = async () => (await api.schedulerEvents.queue.getJobs(['waiting', 'prioritized', 'delayed', 'active', 'completed'])).map((j) => j.data as object);
    await expect.poll(queued).toContainEqual(expect.objectContaining({ type: 'signIn', hostId, userId: alice.id }));
    const bad = runAgentCli(['signin', '--user', 'no spaces allowed', '--state-dir', state.dir], {});
    expect(await bad.exited).toBe(2);
  });

  it('buffers events while the API is down and delivers them in order after reconnecting', async () => {
    await api.stopServer();
    // The agent sees the connection drop; everything now waits in its outbox.
    for (const user of ['u1', 'u2', 'u3']) {
      const run = runAgentCli(['signin', '--user', user, '--state-dir', state.dir], {});
      expect(await run.exited).toBe(0);
    }
    await api.startServer();
    await expect.poll(async () => (await auditActions()).filter((a) => a.action === 'signin').length, { timeout: 20_000 }).toBe(4);
    const order = (await auditActions()).filter((a) => a.action === 'signin').map((a) => (a.after as { user: string }).user);
    expect(order).toEqual(['alice', 'u1', 'u2', 'u3']);
    const actions = (await auditActions()).map((a) => a.action);
    expect(actions).toContain('agent.disconnected');
    expect(actions.filter((a) => a === 'agent.connected').length).toBeGreaterThanOrEqual(2);
    await expect.poll(async () => (await host()).onlineState, { timeout: 10_000 }).toBe('online');
  });

  it('answers bad frames with error frames and keeps serving', async () => {
    // Take the agent off the line, or its reconnects would replace this hand-made connection.
    expect(await (agent as AgentProcess).kill('SIGTERM')).toBe(0);
    const ws = new WebSocket(`ws://127.0.0.1:${api.port}/api/v1/agent/ws`, { headers: { authorization: `Bearer ${credential}` } });
    const frames: DownFrame[] = [];
    ws.on('message', (d: Buffer) => frames.push(JSON.parse(d.toString()) as DownFrame));
    await new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject)));
    const next = async (): Promise<DownFrame> => {
      const n = frames.length;
      await expect.poll(() => frames.length, { timeout: 5_000, message: JSON.stringify(frames).slice(0, 2000) }).toBeGreaterThan(n);
      return frames[n] as DownFrame;
    };
    ws.send(JSON.stringify({ type: 'heartbeat', seq: 1, at: new Date().toISOString(), uptimeSeconds: 1 }));
    expect(await next()).toMatchObject({ type: 'error', code: 'HELLO_REQUIRED' });
    ws.send(JSON.stringify({ type: 'hello', protocolVersion: AGENT_PROTOCOL_VERSION, agentVersion: 'test' }));
    expect(await next()).toMatchObject({ type: 'hello', hostId });
    ws.send('{not json');
    expect(await next()).toMatchObject({ type: 'error', code: 'MALFORMED_FRAME' });
    ws.send(JSON.stringify({ type: 'teleport', seq: 2 }));
    expect(await next()).toMatchObject({ type: 'error', code: 'UNKNOWN_FRAME_TYPE' });
    ws.send(JSON.stringify({ type: 'presence', seq: 3, at: new Date().toISOString(), state: 'asleep', idleSince: null, source: 'fifo' }));
    expect(await next()).toMatchObject({ type: 'error', code: 'MALFORMED_FRAME', refSeq: 3 });
    ws.send(JSON.stringify({ type: 'signin', seq: 4, at: new Date().toISOString(), user: 'x'.repeat(MAX_AGENT_FRAME_BYTES + 10) }));
    expect(await next()).toMatchObject({ type: 'error', code: 'FRAME_TOO_LARGE' });

    // An operation of another host: the agent may not report on it.
    const other = await api.db.prisma.host.create({ data: { name: 'someone-else', poolId: api.poolId } });
    await api.db.prisma.operation.create({ data: { idempotencyKey: 'op-foreign-0001', hostId: other.id, kind: 'suspend', generation: 1 } });
    ws.send(JSON.stringify({ type: 'op-result', seq: 5, at: new Date().toISOString(), idempotencyKey: 'op-foreign-0001', outcome: 'succeeded', replayed: false }));
    expect(await next()).toMatchObject({ type: 'error', code: 'NOT_YOUR_HOST', refSeq: 5 });
    expect((await api.db.prisma.operation.findUniqueOrThrow({ where: { idempotencyKey: 'op-foreign-0001' } })).status).toBe('pending');

    ws.send(JSON.stringify({ type: 'heartbeat', seq: 6, at: new Date().toISOString(), uptimeSeconds: 2 }));
    expect(await next()).toMatchObject({ type: 'ack', seq: 6 });

    // Progress and the result of this host's own operation land in the operations table.
    await api.db.prisma.operation.create({ data: { idempotencyKey: 'op-own-00001', hostId, kind: 'suspend', generation: 1 } });
    ws.send(JSON.stringify({ type: 'op-progress', seq: 7, at: new Date().toISOString(), idempotencyKey: 'op-own-00001', percent: 40, message: 'saving memory' }));
    expect(await next()).toMatchObject({ type: 'ack', seq: 7 });
    expect(await api.db.prisma.operation.findUniqueOrThrow({ where: { idempotencyKey: 'op-own-00001' } })).toMatchObject({ status: 'running', progress: 0.4 });
    const result = { type: 'op-result', seq: 8, at: new Date().toISOString(), idempotencyKey: 'op-own-00001', outcome: 'succeeded', replayed: false, result: { state: 'saved' } };
    ws.send(JSON.stringify(result));
    expect(await next()).toMatchObject({ type: 'ack', seq: 8 });
    ws.send(JSON.stringify({ ...result, seq: 9 })); // a re-sent copy changes nothing
    expect(await next()).toMatchObject({ type: 'ack', seq: 9 });
    expect(await api.db.prisma.operation.findUniqueOrThrow({ where: { idempotencyKey: 'op-own-00001' } })).toMatchObject({ status: 'succeeded', progress: 1, result: { state: 'saved' } });
    expect(await api.db.prisma.auditEvent.count({ where: { entityType: 'operation', action: 'operation.succeeded' } })).toBe(1);
    ws.close();

    // A wrong protocol version is refused and the connection closed.
    const old = new WebSocket(`ws://127.0.0.1:${api.port}/api/v1/agent/ws`, { headers: { authorization: `Bearer ${credential}` } });
    const closed = new Promise<number>((resolve) => old.on('close', (code) => resolve(code)));
    const oldFrames: DownFrame[] = [];
    old.on('message', (d: Buffer) => oldFrames.push(JSON.parse(d.toString()) as DownFrame));
    old.on('open', () => old.send(JSON.stringify({ type: 'hello', protocolVersion: 99, agentVersion: 'future' })));
    expect(await closed).toBe(1008);
    expect(oldFrames[0]).toMatchObject({ type: 'error', code: 'UNSUPPORTED_VERSION', fatal: true });

    // Without a credential there is no upgrade at all.
    const anonymous = new WebSocket(`ws://127.0.0.1:${api.port}/api/v1/agent/ws`);
    const status = await new Promise<number>((resolve) => anonymous.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
    expect(status).toBe(401);
    expect((await fetch(`${api.url}/healthz`)).status).toBe(200);
  });

  it('an agent whose host is removed (credential revoked) says so plainly and exits non-zero', async () => {
    agent = runAgentCli(['run'], agentEnv());
    await expect.poll(async () => api.gateway.registry.isConnectedHere(hostId), { timeout: 20_000 }).toBe(true);
    const del = await fetch(`${api.url}/api/v1/hosts/${hostId}`, { method: 'DELETE', headers: { authorization: `Bearer ${api.adminToken}` } });
    expect(del.status).toBe(204);
    const running = agent as AgentProcess;
    expect(await running.exited).toBe(3);
    expect(running.output()).toMatch(/revoked/);
    agent = undefined;
    const again = runAgentCli(['run'], agentEnv());
    expect(await again.exited).toBe(3);
    expect(again.output()).toMatch(/refused this agent|revoked/);
  });
});
