import { describe, expect, it } from 'vitest';
import { decodeDownFrame, reconcileResultSchema } from '../src/index.js';

const target = { vmId: 'vm-1', domainName: 'alice-desktop', generation: 3 };

function decodeCommand(frame: Record<string, unknown>) {
  return decodeDownFrame(JSON.stringify({ type: 'command', idempotencyKey: 'op-0123456789', ...frame }));
}

function issuePaths(r: ReturnType<typeof decodeCommand>): string[] {
  if (r.ok) return [];
  return ((r.error.details as { issues: { path: string }[] }).issues ?? []).map((i) => i.path);
}

describe('agent protocol: fleet commands (reconcile, delete-state, stop-batch, wake-host, ordering)', () => {
  it('accepts a reconcile listing what the host may keep, without a VM target', () => {
    const expectList = { vms: [{ vmId: 'vm-1', domainName: 'alice-desktop', generation: 4 }], tasks: [{ taskId: 't-1', domainName: 'dp-task-t-1', generation: 2 }] };
    const r = decodeCommand({ kind: 'reconcile', params: { expect: expectList } });
    expect(r).toMatchObject({ ok: true, frame: { kind: 'reconcile', params: { expect: expectList } } });
  });

  it('refuses a reconcile with a VM target or a malformed expectation, naming the field', () => {
    const withTarget = decodeCommand({ kind: 'reconcile', target, params: { expect: { vms: [], tasks: [] } } });
    expect(withTarget).toMatchObject({ ok: false, error: { code: 'INVALID_COMMAND' } });
    const badGeneration = decodeCommand({ kind: 'reconcile', params: { expect: { vms: [{ vmId: 'vm-1', domainName: 'a', generation: -1 }], tasks: [] } } });
    expect(issuePaths(badGeneration)).toContain('params.expect.vms.0.generation');
  });

  it('accepts delete-state with an absolute path and a fencing target; refuses a relative path', () => {
    expect(decodeCommand({ kind: 'delete-state', target, params: { path: '/var/lib/deskpool/saved/a.save' } }).ok).toBe(true);
    expect(issuePaths(decodeCommand({ kind: 'delete-state', target, params: { path: 'saved/a.save' } }))).toEqual(['params.path']);
    expect(decodeCommand({ kind: 'delete-state', params: { path: '/a.save' } })).toMatchObject({ ok: false, error: { code: 'INVALID_COMMAND' } });
  });

  it('accepts stop-batch only with requeue or cancel', () => {
    expect(decodeCommand({ kind: 'stop-batch', target, params: { taskId: 't-1', then: 'cancel' } }).ok).toBe(true);
    expect(issuePaths(decodeCommand({ kind: 'stop-batch', target, params: { taskId: 't-1', then: 'pause' } }))).toEqual(['params.then']);
  });

  it('accepts wake-host with a MAC address and refuses anything else', () => {
    expect(decodeCommand({ kind: 'wake-host', params: { targetHostId: 'h-2', mac: '52:54:00:ab:cd:ef' } }).ok).toBe(true);
    expect(issuePaths(decodeCommand({ kind: 'wake-host', params: { targetHostId: 'h-2', mac: '52:54:00:ab:cd' } }))).toEqual(['params.mac']);
  });

  it('carries ordering as after: idempotency keys, and refuses an empty or malformed list', () => {
    const ok = decodeCommand({ kind: 'restore', target, params: {}, after: ['op-aaaaaaaaaa', 'op-bbbbbbbbbb'] });
    expect(ok).toMatchObject({ ok: true, frame: { after: ['op-aaaaaaaaaa', 'op-bbbbbbbbbb'] } });
    expect(issuePaths(decodeCommand({ kind: 'restore', target, params: {}, after: [] }))).toEqual(['after']);
    expect(issuePaths(decodeCommand({ kind: 'restore', target, params: {}, after: ['op-aaaa/bbbb'] }))).toEqual(['after.0']);
  });

  it('reads a reconcile result and rejects one without the found lists', () => {
    expect(reconcileResultSchema.safeParse({ foundRunningVmIds: ['vm-1'], foundRunningTaskIds: [], destroyed: ['stray'], changed: true }).success).toBe(true);
    expect(reconcileResultSchema.safeParse({ foundRunningVmIds: 'vm-1' }).success).toBe(false);
  });
});
