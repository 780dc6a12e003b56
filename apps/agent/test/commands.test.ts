import { mkdtempSync, readFileSync, rmSync, writeFileSync, appendFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CommandFrame } from '@deskpool/protocol';
import { decideCommand, reconcileInterrupted } from '../src/commands/decide.js';
import { CommandJournal, JournalCorrupt, type JournalBegin } from '../src/commands/journal.js';

const suspend = (key: string, generation: number, vmId = 'vm-1'): CommandFrame => ({
  type: 'command',
  idempotencyKey: key,
  kind: 'suspend',
  target: { vmId, domainName: 'dpt-desk', generation },
  params: {},
});

describe('command decisions', () => {
  it('executes a new command, replays a finished one and ignores one still running', () => {
    expect(decideCommand(suspend('op-00000001', 1), undefined, undefined)).toEqual({ action: 'execute' });
    const begin: JournalBegin = { t: 'begin', key: 'op-00000001', kind: 'suspend', vmId: 'vm-1', domainName: 'dpt-desk', generation: 1, params: {}, at: 'x' };
    expect(decideCommand(suspend('op-00000001', 1), { begin }, 1)).toEqual({ action: 'already-running' });
    const end = { t: 'end' as const, key: 'op-00000001', outcome: 'succeeded' as const, result: { state: 'saved' }, at: 'y' };
    expect(decideCommand(suspend('op-00000001', 1), { begin, end }, 1)).toEqual({ action: 'replay', end });
  });

  it('refuses a lower fencing generation but accepts equal and higher ones', () => {
    expect(decideCommand(suspend('op-00000002', 3), undefined, 4)).toMatchObject({ action: 'refuse', code: 'STALE_GENERATION' });
    expect(decideCommand(suspend('op-00000002', 4), undefined, 4)).toEqual({ action: 'execute' });
    expect(decideCommand(suspend('op-00000002', 5), undefined, 4)).toEqual({ action: 'execute' });
  });

  it('refuses reuse of a key for a different command', () => {
    const begin: JournalBegin = { t: 'begin', key: 'op-00000003', kind: 'start', vmId: 'vm-1', generation: 1, params: {}, at: 'x' };
    expect(decideCommand(suspend('op-00000003', 1), { begin }, 1)).toMatchObject({ action: 'refuse', code: 'IDEMPOTENCY_CONFLICT' });
  });

  it('judges interrupted commands by the state the domain reached', () => {
    const b = (kind: JournalBegin['kind'], params: Record<string, unknown> = {}): JournalBegin => ({ t: 'begin', key: 'k', kind, domainName: 'd', params, at: 'x' });
    expect(reconcileInterrupted(b('suspend'), 'saved', false).outcome).toBe('succeeded');
    expect(reconcileInterrupted(b('suspend'), 'running', false).outcome).toBe('failed');
    expect(reconcileInterrupted(b('restore'), 'running', false).outcome).toBe('succeeded');
    expect(reconcileInterrupted(b('start'), 'shutoff', false).outcome).toBe('failed');
    expect(reconcileInterrupted(b('save-state', { path: '/x' }), 'shutoff', true).outcome).toBe('succeeded');
    expect(reconcileInterrupted(b('save-state', { path: '/x' }), 'shutoff', false).outcome).toBe('failed');
    expect(reconcileInterrupted(b('migrate-out'), 'missing', false).outcome).toBe('succeeded');
    expect(reconcileInterrupted(b('hotplug'), 'running', false).outcome).toBe('failed');
  });
});

describe('command journal', () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'dp-agent-journal-'));
    file = path.join(dir, 'state', 'journal.jsonl');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('persists begins and ends, the highest generation per VM, and what is unfinished, across reopen', async () => {
    const j = await CommandJournal.open(file);
    await j.append({ t: 'begin', key: 'a', kind: 'suspend', vmId: 'vm-1', domainName: 'd1', generation: 2, params: {}, at: 't1' });
    await j.append({ t: 'end', key: 'a', outcome: 'succeeded', result: { state: 'saved' }, at: 't2' });
    await j.append({ t: 'begin', key: 'b', kind: 'restore', vmId: 'vm-1', domainName: 'd1', generation: 5, params: {}, at: 't3' });
    await j.close();
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const again = await CommandJournal.open(file);
    expect(again.get('a')?.end?.result).toEqual({ state: 'saved' });
    expect(again.generationOf('vm-1')).toBe(5);
    expect(again.incomplete().map((b) => b.key)).toEqual(['b']);
    await again.close();
    expect(readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(3);
  });

  it('drops a torn last line (a crash mid-write) and keeps appending cleanly', async () => {
    const j = await CommandJournal.open(file);
    await j.append({ t: 'begin', key: 'a', kind: 'suspend', vmId: 'vm-1', domainName: 'd1', generation: 1, params: {}, at: 't1' });
    await j.close();
    appendFileSync(file, '{"t":"end","key":"a","outc');
    const again = await CommandJournal.open(file);
    expect(again.incomplete().map((b) => b.key)).toEqual(['a']);
    await again.append({ t: 'end', key: 'a', outcome: 'failed', error: { code: 'X', message: 'y' }, at: 't2' });
    await again.close();
    const reopened = await CommandJournal.open(file);
    expect(reopened.get('a')?.end?.outcome).toBe('failed');
    await reopened.close();
  });

  it('refuses a journal damaged in the middle, saying what to do', async () => {
    const j = await CommandJournal.open(file);
    await j.close();
    writeFileSync(file, 'garbage\n{"t":"end","key":"a","outcome":"succeeded","at":"t"}\n');
    await expect(CommandJournal.open(file)).rejects.toBeInstanceOf(JournalCorrupt);
    await expect(CommandJournal.open(file)).rejects.toThrow(/line 1/);
  });
});
