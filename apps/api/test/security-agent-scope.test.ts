// An agent acts only for its own host: it cannot report another host's presence, answer or
// advance another host's operations, report another host's batch tasks, or receive another
// host's commands — on hello or later.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { changeCount, connectAgent, settled, startFuzzTarget, type AgentSocket, type FuzzTarget } from './fuzz-kit.js';

let target: FuzzTarget;
beforeAll(async () => {
  target = await startFuzzTarget();
});
afterAll(async () => {
  await target?.close();
});

const at = '2026-11-26T09:00:00.000Z';

async function send(socket: AgentSocket, frame: Record<string, unknown>): Promise<Record<string, unknown>> {
  socket.ws.send(JSON.stringify(frame));
  return socket.next();
}

describe('an agent acts only for its own host', () => {
  it("cannot report another host's presence: frames carry no host, and naming one is refused", async () => {
    const a = await connectAgent(target);
    await settled(target.db);
    const before = await target.db.prisma.host.findUniqueOrThrow({ where: { id: target.hostB.id } });
    const count = await changeCount(target.db);
    for (const field of ['hostId', 'host', 'hostName']) {
      const reply = await send(a, { type: 'presence', seq: 7, at, state: 'present', idleSince: null, source: 'evdev', [field]: target.hostB.id });
      expect(reply).toMatchObject({ type: 'error', code: 'MALFORMED_FRAME', refSeq: 7 });
    }
    expect(await changeCount(target.db)).toBe(count);
    // A presence frame of its own changes its own host only.
    expect(await send(a, { type: 'presence', seq: 8, at, state: 'present', idleSince: null, source: 'evdev' })).toEqual({ type: 'ack', seq: 8 });
    expect((await target.db.prisma.host.findUniqueOrThrow({ where: { id: target.hostA.id } })).presenceState).toBe('present');
    expect(await target.db.prisma.host.findUniqueOrThrow({ where: { id: target.hostB.id } })).toEqual(before);
    a.close();
  });

  it("cannot answer, advance or report another host's operations and tasks", async () => {
    const a = await connectAgent(target);
    await settled(target.db);
    const opsBefore = await target.db.prisma.operation.findMany({ where: { hostId: target.hostB.id }, orderBy: { id: 'asc' } });
    const tasksBefore = await target.db.prisma.batchTask.findMany({ where: { id: { in: target.hostB.taskIds } }, orderBy: { id: 'asc' } });
    const count = await changeCount(target.db);
    let seq = 100;
    for (const key of target.hostB.operationKeys) {
      for (const outcome of ['succeeded', 'failed', 'refused'] as const) {
        const reply = await send(a, { type: 'op-result', seq: ++seq, at, idempotencyKey: key, outcome, replayed: false, ...(outcome === 'succeeded' ? { result: { foundRunningVmIds: [] } } : { error: { code: 'X', message: 'spoofed' } }) });
        expect(reply).toMatchObject({ type: 'error', code: 'NOT_YOUR_HOST', refSeq: seq });
      }
      expect(await send(a, { type: 'op-progress', seq: ++seq, at, idempotencyKey: key, percent: 99, message: 'spoof' })).toMatchObject({ type: 'error', code: 'NOT_YOUR_HOST' });
    }
    for (const taskId of target.hostB.taskIds) {
      expect(await send(a, { type: 'task-output', seq: ++seq, at, taskId, generation: 3, offset: 0, data: 'spoofed output' })).toMatchObject({ type: 'error', code: 'NOT_YOUR_HOST' });
      expect(await send(a, { type: 'task-finished', seq: ++seq, at, taskId, generation: 3, exitCode: 0 })).toMatchObject({ type: 'error', code: 'NOT_YOUR_HOST' });
    }
    expect(await changeCount(target.db)).toBe(count);
    expect(await target.db.prisma.operation.findMany({ where: { hostId: target.hostB.id }, orderBy: { id: 'asc' } })).toEqual(opsBefore);
    expect(await target.db.prisma.batchTask.findMany({ where: { id: { in: target.hostB.taskIds } }, orderBy: { id: 'asc' } })).toEqual(tasksBefore);
    a.close();
  });

  it("never receives another host's commands, on hello or when they are sent later", async () => {
    const a = await connectAgent(target);
    const b = await connectAgent(target, target.hostB.credential);
    // Host B's pending operations come to B on hello (the control that the test can see them) ...
    await expect.poll(() => b.commands.map((c) => c.idempotencyKey).sort()).toEqual([...target.hostB.operationKeys].sort());
    // ... and a command sent to B now goes to B's socket only.
    const taskId = target.hostB.taskIds[0]!;
    await target.gateway.sendCommand(target.hostB.id, { type: 'command', idempotencyKey: 'op-scope-check-1', kind: 'stop-batch', target: { vmId: taskId, domainName: `dp-task-${taskId}`, generation: 3 }, params: { taskId, then: 'requeue' } });
    await expect.poll(() => b.commands.some((c) => c.idempotencyKey === 'op-scope-check-1')).toBe(true);
    // A round trip on A after all that: anything meant for A would have arrived by now.
    expect(await send(a, { type: 'heartbeat', seq: 500, at, uptimeSeconds: 1 })).toEqual({ type: 'ack', seq: 500 });
    expect(a.commands).toEqual([]);
    a.close();
    b.close();
  });

  it("cannot open a channel with another host's credential revoked, or with an API token", async () => {
    const res = await fetch(`${target.url}/api/v1/agent/ws`, { headers: { authorization: `Bearer ${target.tokens.admin}` } });
    expect(res.status).toBe(401);
    await target.db.prisma.hostCredential.updateMany({ where: { hostId: target.hostB.id }, data: { revokedAt: new Date() } });
    const revoked = await fetch(`${target.url}/api/v1/agent/ws`, { headers: { authorization: `Bearer ${target.hostB.credential}` } });
    expect(revoked.status).toBe(401);
    expect(await revoked.json()).toMatchObject({ error: { code: 'CREDENTIAL_REVOKED' } });
  });
});
