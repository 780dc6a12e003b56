// A presence frame records the PC's presence and its audit event together (one statement): the
// audit's before/after are the presence as it was and as it became; a late duplicate changes and
// audits nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectAgent, settled, startFuzzTarget, type AgentSocket, type FuzzTarget } from './fuzz-kit.js';

let target: FuzzTarget;
beforeAll(async () => {
  target = await startFuzzTarget();
});
afterAll(async () => {
  await target?.close();
});

async function send(socket: AgentSocket, frame: Record<string, unknown>): Promise<Record<string, unknown>> {
  socket.ws.send(JSON.stringify(frame));
  return socket.next();
}

const presenceAudits = () => target.db.prisma.auditEvent.findMany({ where: { entityId: target.hostA.id, action: { startsWith: 'presence.' } }, orderBy: { id: 'asc' } });

describe('presence frames', () => {
  it('record presence and its audit at once; a repeated state is neither written nor audited', async () => {
    const a = await connectAgent(target);
    await settled(target.db);
    await target.db.prisma.host.update({ where: { id: target.hostA.id }, data: { presenceState: 'idle', presenceSince: new Date('2026-11-26T07:00:00.000Z'), onlineState: 'offline' } });
    const auditsBefore = (await presenceAudits()).length;

    expect(await send(a, { type: 'presence', seq: 1, at: '2026-11-26T09:00:00.000Z', state: 'present', idleSince: null, source: 'evdev' })).toEqual({ type: 'ack', seq: 1 });
    const host = await target.db.prisma.host.findUniqueOrThrow({ where: { id: target.hostA.id } });
    expect({ state: host.presenceState, since: host.presenceSince?.toISOString(), online: host.onlineState }).toEqual({ state: 'present', since: '2026-11-26T09:00:00.000Z', online: 'online' });
    const audits = await presenceAudits();
    expect(audits.length).toBe(auditsBefore + 1);
    expect(audits.at(-1)).toMatchObject({
      entityType: 'host',
      action: 'presence.present',
      actor: expect.stringMatching(/^agent:/),
      cause: 'agent-frame:presence#1 (source evdev)',
      before: { presenceState: 'idle', presenceSince: '2026-11-26T07:00:00.000Z' },
      after: { presenceState: 'present', presenceSince: '2026-11-26T09:00:00.000Z' },
    });

    // A late duplicate of the same state: acknowledged, nothing changes.
    expect(await send(a, { type: 'presence', seq: 2, at: '2026-11-26T09:05:00.000Z', state: 'present', idleSince: null, source: 'evdev' })).toEqual({ type: 'ack', seq: 2 });
    expect((await target.db.prisma.host.findUniqueOrThrow({ where: { id: target.hostA.id } })).presenceSince?.toISOString()).toBe('2026-11-26T09:00:00.000Z');
    expect((await presenceAudits()).length).toBe(auditsBefore + 1);

    // Idle since the last input, as the agent says.
    expect(await send(a, { type: 'presence', seq: 3, at: '2026-11-26T09:30:00.000Z', state: 'idle', idleSince: '2026-11-26T09:14:00.000Z', source: 'evdev' })).toEqual({ type: 'ack', seq: 3 });
    expect((await presenceAudits()).at(-1)).toMatchObject({ action: 'presence.idle', before: { presenceState: 'present', presenceSince: '2026-11-26T09:00:00.000Z' }, after: { presenceState: 'idle', presenceSince: '2026-11-26T09:14:00.000Z' } });
    a.close();
  });
});
