// Parsers for virsh output, against text captured from libvirt 9.0.
import { describe, expect, it } from 'vitest';
import { parseDominfo, parseDomstats, parseEventLine, parseJobInfo, parseList, parseNodeMemory, toDomainState } from '../src/libvirt/parse.js';

const fixed = () => new Date('2030-01-01T00:00:00Z');

describe('virsh output parsers', () => {
  it('reads nodememstats, counting buffers and page cache as free', () => {
    const text = 'total  :             24683620 KiB\nfree   :             24044708 KiB\nbuffers:                19020 KiB\ncached :               278248 KiB\n';
    expect(parseNodeMemory(text)).toEqual({ totalMiB: 24105, freeMiB: Math.floor((24044708 + 19020 + 278248) / 1024) });
  });

  it('reads dominfo, turning a shut-off domain with a managed save into "saved"', () => {
    const info = parseDominfo(`Id:             -
Name:           dpt-manual
UUID:           4e6fc614-5f84-4dd4-930e-5521bfd0d8f8
OS Type:        hvm
State:          shut off
CPU(s):         2
Max memory:     262144 KiB
Used memory:    131072 KiB
Persistent:     yes
Autostart:      disable
Managed save:   yes
`);
    expect(info).toEqual({ state: 'saved', uuid: '4e6fc614-5f84-4dd4-930e-5521bfd0d8f8', vcpus: 2, maxMemoryKiB: 262144, usedMemoryKiB: 131072, persistent: true, managedSave: true });
    expect(parseDominfo('State:          running\nManaged save:   no\n').state).toBe('running');
  });

  it('maps every virsh state word', () => {
    expect(['running', 'idle', 'blocked', 'in shutdown', 'paused', 'pmsuspended', 'shut off', 'crashed', 'saved'].map((s) => toDomainState(s))).toEqual([
      'running', 'running', 'running', 'running', 'paused', 'paused', 'shutoff', 'crashed', 'saved',
    ]);
  });

  it('reads list --all --managed-save, including inactive domains whose Id is "-"', () => {
    const out = ` 16   dpt-smoke-mig   running
 -    dpt-a           saved
 -    dpt-b           shut off
 3    dpt-c           paused
`;
    expect(parseList(out)).toEqual([
      { name: 'dpt-smoke-mig', state: 'running' },
      { name: 'dpt-a', state: 'saved' },
      { name: 'dpt-b', state: 'shutoff' },
      { name: 'dpt-c', state: 'paused' },
    ]);
    expect(parseList(' Id   Name   State\n--------------------\n\n')).toEqual([]);
  });

  it('reads domstats --raw', () => {
    const m = parseDomstats("Domain: 'dpt-manual'\n  state.state=1\n  balloon.current=131072\n  vcpu.current=1\n");
    expect(m.get('balloon.current')).toBe('131072');
    expect(m.get('vcpu.current')).toBe('1');
  });

  it('reads life-cycle events with their timestamps', () => {
    expect(parseEventLine("2026-11-26 09:38:43.970+0000: event 'lifecycle' for domain 'dpt-manual': Stopped Saved", fixed)).toEqual({
      name: 'dpt-manual', type: 'saved', detail: 'Saved', at: new Date('2026-11-26T09:38:43.970Z'),
    });
    const types = [
      'Defined Added', 'Started Booted', 'Suspended Paused', 'Resumed Unpaused', 'Stopped Destroyed', 'Stopped Migrated', 'Stopped Crashed', 'Undefined Removed',
    ].map((w) => parseEventLine(`event 'lifecycle' for domain 'x': ${w}`, fixed)?.type);
    expect(types).toEqual(['defined', 'started', 'suspended', 'resumed', 'stopped', 'migrated', 'crashed', 'undefined']);
    expect(parseEventLine("event 'lifecycle' for domain 'x': Shutdown Finished after guest request", fixed)).toBeUndefined();
    expect(parseEventLine('garbage', fixed)).toBeUndefined();
  });

  it('reads job progress from domjobinfo --rawstats', () => {
    const p = parseJobInfo('Job type: 2\n\noperation: 2\ndata_total: 336076800\ndata_processed: 168038400\ndata_remaining: 0\n', 'saving');
    expect(p).toEqual({ phase: 'saving', bytesDone: 168038400, bytesTotal: 336076800, fraction: 0.5 });
    expect(parseJobInfo('Job type: 0\n', 'saving')).toBeUndefined();
  });
});
