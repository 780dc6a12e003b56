// Parsers for virsh's text output. Pure functions, unit-tested against output captured from
// libvirt 9.0 (virsh's formats have been stable for a decade).
import type { DomainEvent, DomainEventType, DomainState, DomainSummary, Progress } from '../driver.js';

/** Maps a virsh state word to ours. `managedSave` turns a shut-off domain into 'saved'. */
export function toDomainState(virshState: string, managedSave = false): DomainState {
  const s = virshState.trim().toLowerCase();
  switch (s) {
    case 'running':
    case 'idle':
    case 'blocked':
    case 'in shutdown':
      return 'running';
    case 'paused':
    case 'pmsuspended':
      return 'paused';
    case 'shut off':
    case 'shutoff':
    case 'no state':
      return managedSave ? 'saved' : 'shutoff';
    case 'saved':
      return 'saved';
    case 'crashed':
      return 'crashed';
    default:
      return 'shutoff';
  }
}

/** `virsh dominfo` -> key/value map ("State" -> "running", ...). */
export function parseKeyValues(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    m.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  return m;
}

export interface DomInfo {
  state: DomainState;
  uuid?: string;
  vcpus: number;
  maxMemoryKiB: number;
  usedMemoryKiB: number;
  persistent: boolean;
  managedSave: boolean;
}

export function parseDominfo(text: string): DomInfo {
  const kv = parseKeyValues(text);
  const managedSave = kv.get('Managed save') === 'yes';
  const kib = (k: string): number => Number(/^(\d+)/.exec(kv.get(k) ?? '')?.[1] ?? 0);
  return {
    state: toDomainState(kv.get('State') ?? 'shut off', managedSave),
    ...(kv.get('UUID') ? { uuid: kv.get('UUID') } : {}),
    vcpus: Number(kv.get('CPU(s)') ?? 0),
    maxMemoryKiB: kib('Max memory'),
    usedMemoryKiB: kib('Used memory'),
    persistent: kv.get('Persistent') === 'yes',
    managedSave,
  };
}

/** `virsh nodememstats` -> MiB. Page cache is reclaimable, so it counts as free for placing a VM. */
export function parseNodeMemory(text: string): { totalMiB: number; freeMiB: number } {
  const kv = parseKeyValues(text);
  const kib = (k: string): number => Number(/^(\d+)/.exec(kv.get(k) ?? '')?.[1] ?? 0);
  return { totalMiB: Math.floor(kib('total') / 1024), freeMiB: Math.floor((kib('free') + kib('buffers') + kib('cached')) / 1024) };
}

/** `virsh domstats --raw` -> "balloon.current" -> "131072", ... */
export function parseDomstats(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const t = line.trim();
    const i = t.indexOf('=');
    if (i > 0) m.set(t.slice(0, i), t.slice(i + 1));
  }
  return m;
}

/** `virsh -q list --all --managed-save`: " 1    dpt-a   running" / " -    dpt-b   saved". */
export function parseList(text: string): DomainSummary[] {
  const out: DomainSummary[] = [];
  for (const line of text.split('\n')) {
    if (/^[\s-]*$/.test(line)) continue; // blank or the header's rule
    const m = /^\s*(\S+)\s+(\S+)\s+(.+?)\s*$/.exec(line);
    if (!m || m[1] === 'Id') continue;
    out.push({ name: m[2] ?? '', state: toDomainState(m[3] ?? '') });
  }
  return out;
}

const EVENT_RE = /^(?:(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)([+-]\d{4})?: )?event 'lifecycle' for domain '?([^':]+)'?: (\w+)(?: (\w+))?/;

/**
 * One line of `virsh event --all --loop --timestamp --event lifecycle`, e.g.
 * "2026-11-26 09:40:01.123+0000: event 'lifecycle' for domain 'dpt-a': Stopped Saved".
 * Returns undefined for lines that are not a life-cycle event we report.
 */
export function parseEventLine(line: string, now: () => Date): DomainEvent | undefined {
  const m = EVENT_RE.exec(line.trim());
  if (!m) return undefined;
  const [, ts, tz, name, kind, detail = ''] = m;
  const type = eventType(kind ?? '', detail);
  if (!type || !name) return undefined;
  let at = now();
  if (ts) {
    const iso = `${ts.replace(' ', 'T')}${tz ? `${tz.slice(0, 3)}:${tz.slice(3)}` : 'Z'}`;
    const d = new Date(iso);
    if (!Number.isNaN(d.getTime())) at = d;
  }
  return { name, type, detail, at };
}

function eventType(kind: string, detail: string): DomainEventType | undefined {
  switch (kind) {
    case 'Defined':
      return 'defined';
    case 'Undefined':
      return 'undefined';
    case 'Started':
      return 'started';
    case 'Suspended':
      return detail === 'Migrated' ? 'migrated' : 'suspended';
    case 'PMSuspended':
      return 'suspended';
    case 'Resumed':
      return 'resumed';
    case 'Stopped':
      if (detail === 'Saved') return 'saved';
      if (detail === 'Migrated') return 'migrated';
      if (detail === 'Crashed') return 'crashed';
      return 'stopped';
    case 'Crashed':
      return 'crashed';
    default:
      return undefined; // "Shutdown Finished" and friends: the Stopped that follows says it
  }
}

/** `virsh domjobinfo --rawstats` -> Progress, or undefined when no job runs. */
export function parseJobInfo(text: string, phase: string): Progress | undefined {
  const kv = parseKeyValues(text);
  const type = kv.get('type') ?? kv.get('Job type');
  // --rawstats prints the numeric job type: 0 = none.
  if (!type || type === '0' || /none/i.test(type)) return undefined;
  const n = (k: string): number | undefined => {
    const v = kv.get(k);
    return v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined;
  };
  const done = n('data_processed') ?? n('memory_processed');
  const total = n('data_total') ?? n('memory_total');
  return {
    phase,
    ...(done !== undefined ? { bytesDone: done } : {}),
    ...(total !== undefined ? { bytesTotal: total } : {}),
    ...(done !== undefined && total ? { fraction: Math.min(1, done / total) } : {}),
  };
}
