import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  AGENT_PROTOCOL_VERSION,
  MAX_AGENT_FRAME_BYTES,
  MAX_TASK_OUTPUT_CHARS,
  MAX_TASK_RESULT_CHARS,
  TASK_OUTPUT_CHUNK_BYTES,
  decodeDownFrame,
  decodeUpFrame,
  encodeFrame,
  type CommandFrame,
  type UpFrame,
} from '../src/index.js';

const at = '2026-11-26T09:00:00.000Z';

describe('agent protocol: up-frames', () => {
  it('accepts a hello with the current version', () => {
    const r = decodeUpFrame(JSON.stringify({ type: 'hello', protocolVersion: AGENT_PROTOCOL_VERSION, agentVersion: '0.1.0' }));
    expect(r).toEqual({ ok: true, frame: { type: 'hello', protocolVersion: AGENT_PROTOCOL_VERSION, agentVersion: '0.1.0' } });
  });

  it('refuses an unknown protocol version with a fatal UNSUPPORTED_VERSION error frame', () => {
    const r = decodeUpFrame(JSON.stringify({ type: 'hello', protocolVersion: 99, agentVersion: '9.0.0' }));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.code).toBe('UNSUPPORTED_VERSION');
    expect(r.error.fatal).toBe(true);
    expect(r.error.message).toContain('99');
  });

  it('round-trips every kind of up-frame', () => {
    const frames: UpFrame[] = [
      { type: 'heartbeat', seq: 1, at, uptimeSeconds: 3 },
      { type: 'presence', seq: 2, at, state: 'idle', idleSince: at, source: 'fifo' },
      { type: 'presence', seq: 3, at, state: 'present', idleSince: null, source: 'evdev' },
      { type: 'signin', seq: 4, at, user: 'alice' },
      {
        type: 'inventory',
        seq: 5,
        at,
        inventory: {
          hostname: 'pc-1',
          cpuCores: 8,
          memoryMiB: 16384,
          diskGiB: 512,
          gpus: [],
          macAddresses: ['52:54:00:12:34:56'],
          hypervisor: { kvm: true, libvirtVersion: '9.0.0', qemuVersion: '7.2.0', liveMigration: true, hotplugCpu: true, hotplugMemory: false },
          agentVersion: '0.1.0',
        },
      },
      { type: 'domain-state', seq: 6, at, domains: [{ domainName: 'desk-alice', state: 'running' }] },
      { type: 'op-progress', seq: 7, at, idempotencyKey: 'op-12345678', percent: 40 },
      { type: 'op-result', seq: 8, at, idempotencyKey: 'op-12345678', outcome: 'succeeded', replayed: false, result: { state: 'running' } },
      { type: 'op-result', seq: 9, at, idempotencyKey: 'op-12345679', outcome: 'refused', replayed: false, error: { code: 'STALE_GENERATION', message: 'x' } },
      { type: 'events-dropped', seq: 10, at, count: 3, oldestAt: at, newestAt: at, countsByType: { heartbeat: 3 } },
      { type: 'task-output', seq: 11, at, taskId: 'task-1', generation: 2, offset: 0, data: 'count 1\r\n\u001b[0m' },
      { type: 'task-finished', seq: 12, at, taskId: 'task-1', generation: 2, exitCode: 0, result: '5050' },
      { type: 'task-finished', seq: 13, at, taskId: 'task-1', generation: 2, exitCode: null, reason: 'crashed' },
    ];
    for (const frame of frames) {
      expect(decodeUpFrame(encodeFrame(frame))).toEqual({ ok: true, frame });
    }
  });

  it('refuses task frames with a negative offset, empty or oversized data, a fractional exit code, a missing generation or one beyond a PostgreSQL integer', () => {
    const base = { type: 'task-output', seq: 1, at, taskId: 't', generation: 0, offset: 0, data: 'x' };
    expect(decodeUpFrame(JSON.stringify(base)).ok).toBe(true);
    const bad: [Record<string, unknown>, string][] = [
      [{ ...base, offset: -1 }, 'offset'],
      [{ ...base, data: '' }, 'data'],
      [{ ...base, data: 'x'.repeat(MAX_TASK_OUTPUT_CHARS + 1) }, 'data'],
      [{ type: 'task-finished', seq: 2, at, taskId: 't', generation: 0, exitCode: 1.5 }, 'exitCode'],
      [{ type: 'task-finished', seq: 2, at, taskId: 't', exitCode: 0 }, 'generation'],
      // Found by the agent fuzzer: 2^31 reached PostgreSQL's integer column as a server error.
      [{ type: 'task-finished', seq: 2, at, taskId: 't', generation: 2 ** 31, exitCode: 0 }, 'generation'],
      [{ ...base, generation: 2 ** 31 }, 'generation'],
      [{ type: 'task-finished', seq: 2, at, taskId: 't', generation: 0, exitCode: 0, result: 'r'.repeat(MAX_TASK_RESULT_CHARS + 1) }, 'result'],
    ];
    for (const [frame, field] of bad) {
      const r = decodeUpFrame(JSON.stringify(frame));
      expect(r.ok).toBe(false);
      if (r.ok) continue;
      expect(r.error.code).toBe('MALFORMED_FRAME');
      expect(JSON.stringify(r.error.details)).toContain(`"path":"${field}"`);
    }
  });

  it('a task-output chunk of the agent\'s size fits in a frame even when every byte is a control character', () => {
    const frame: UpFrame = { type: 'task-output', seq: 1, at, taskId: 't'.repeat(128), generation: 1, offset: 2 ** 40, data: '\u0001'.repeat(TASK_OUTPUT_CHUNK_BYTES) };
    expect(decodeUpFrame(encodeFrame(frame)).ok).toBe(true);
  });

  it('names the field that is wrong', () => {
    const r = decodeUpFrame(JSON.stringify({ type: 'presence', seq: 1, at, state: 'asleep', idleSince: null, source: 'fifo' }));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.code).toBe('MALFORMED_FRAME');
    expect(r.error.refSeq).toBe(1);
    expect(JSON.stringify(r.error.details)).toContain('"path":"state"');
  });

  it('refuses idle without idleSince and present with it', () => {
    expect(decodeUpFrame(JSON.stringify({ type: 'presence', seq: 1, at, state: 'idle', idleSince: null, source: 'fifo' })).ok).toBe(false);
    expect(decodeUpFrame(JSON.stringify({ type: 'presence', seq: 1, at, state: 'present', idleSince: at, source: 'fifo' })).ok).toBe(false);
  });

  it('refuses unknown types, non-JSON, non-objects and oversized frames with the matching code', () => {
    const codeOf = (raw: string) => {
      const r = decodeUpFrame(raw);
      return r.ok ? 'ok' : r.error.code;
    };
    expect(codeOf('{"type":"teleport","seq":1}')).toBe('UNKNOWN_FRAME_TYPE');
    expect(codeOf('{"type":"__proto__"}')).toBe('UNKNOWN_FRAME_TYPE');
    expect(codeOf('not json')).toBe('MALFORMED_FRAME');
    expect(codeOf('[1,2]')).toBe('MALFORMED_FRAME');
    expect(codeOf('null')).toBe('MALFORMED_FRAME');
    expect(codeOf(JSON.stringify({ type: 'signin', seq: 1, at, user: 'x'.repeat(MAX_AGENT_FRAME_BYTES) }))).toBe('FRAME_TOO_LARGE');
  });

  it('never throws on arbitrary input (property)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json(), fc.uint8Array().map((a) => Buffer.from(a))), (raw) => {
        const up = decodeUpFrame(raw);
        const down = decodeDownFrame(raw);
        expect(typeof up.ok).toBe('boolean');
        expect(typeof down.ok).toBe('boolean');
      }),
      { numRuns: 2000 },
    );
  });
});

describe('agent protocol: down-frames', () => {
  const suspend: CommandFrame = {
    type: 'command',
    idempotencyKey: 'op-abcdef01',
    kind: 'suspend',
    target: { vmId: 'vm-1', domainName: 'desk-alice', generation: 4 },
    params: {},
  };

  it('accepts a command carrying idempotency key and fencing generation', () => {
    expect(decodeDownFrame(JSON.stringify(suspend))).toEqual({ ok: true, frame: suspend });
  });

  it('applies parameter defaults', () => {
    const r = decodeDownFrame(JSON.stringify({ ...suspend, kind: 'migrate-out', params: { targetUri: 'qemu+tcp://h2/system' } }));
    expect(r.ok && r.frame.type === 'command' && r.frame.kind === 'migrate-out' && r.frame.params.live).toBe(true);
  });

  it('lets sleep-host go without a VM target but requires one for VM commands', () => {
    expect(decodeDownFrame(JSON.stringify({ type: 'command', idempotencyKey: 'op-sleep-001', kind: 'sleep-host', params: {} })).ok).toBe(true);
    const r = decodeDownFrame(JSON.stringify({ type: 'command', idempotencyKey: 'op-start-001', kind: 'start', params: {} }));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.code).toBe('INVALID_COMMAND');
  });

  it('answers an unknown command kind with UNKNOWN_COMMAND naming the idempotency key', () => {
    const r = decodeDownFrame(JSON.stringify({ ...suspend, kind: 'format-disk' }));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.code).toBe('UNKNOWN_COMMAND');
    expect(r.error.refIdempotencyKey).toBe('op-abcdef01');
  });

  it('refuses hotplug without anything to plug and relative state paths', () => {
    expect(decodeDownFrame(JSON.stringify({ ...suspend, kind: 'hotplug', params: {} })).ok).toBe(false);
    expect(decodeDownFrame(JSON.stringify({ ...suspend, kind: 'save-state', params: { path: 'rel/x' } })).ok).toBe(false);
  });

  it('refuses to encode a frame larger than the limit', () => {
    expect(() => encodeFrame({ type: 'error', code: 'INTERNAL', message: 'x'.repeat(MAX_AGENT_FRAME_BYTES + 1), fatal: false })).toThrow(RangeError);
  });
});
