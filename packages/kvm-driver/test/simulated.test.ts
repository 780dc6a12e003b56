// What only the simulator has: timing models on a virtual clock, fault injection, migration
// between simulated hosts, crashes.
import { describe, expect, it } from 'vitest';
import { HostUnreachable, InsufficientResources, LibvirtDown, OperationAborted, OperationTimeout } from '../src/errors.js';
import { guestDomainSpec } from '../src/guest.js';
import { VirtualClock } from '../src/sim/clock.js';
import { SimNetwork, SimulatedDriver } from '../src/sim/driver.js';
import { counterValues } from '../src/guest.js';

const image = { kernel: '/k', initrd: '/i' };
const spec = (name: string, memoryMiB = 1024, touchMiB?: number) =>
  guestDomainSpec({ name, serialLogPath: `/serial/${name}`, image, memoryMiB, task: { mode: 'counter', ...(touchMiB ? { touchMiB } : {}) } });

async function running(d: SimulatedDriver, clock: VirtualClock, name: string, memoryMiB = 1024, touchMiB?: number): Promise<void> {
  await d.define(spec(name, memoryMiB, touchMiB));
  await d.start(name);
  await clock.advance(10_000);
}

/** Advances a manual clock in small steps until p settles. */
async function drive<T>(clock: VirtualClock, p: Promise<T>): Promise<T> {
  let settled = false;
  p.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < 100_000 && !settled; i++) await clock.advance(100);
  return p;
}

describe('VirtualClock', () => {
  it('wakes sleepers in time order, whatever order they slept in', async () => {
    const clock = new VirtualClock({ startMs: 0 });
    const woke: string[] = [];
    await Promise.all([clock.sleep(300).then(() => woke.push(`b@${clock.now()}`)), clock.sleep(100).then(() => woke.push(`a@${clock.now()}`))]);
    expect(woke).toEqual(['a@100', 'b@300']);
  });

  it('moves only when advanced if auto-advance is off', async () => {
    const clock = new VirtualClock({ startMs: 0, autoAdvance: false });
    let done = false;
    void clock.sleep(1000).then(() => (done = true));
    await clock.advance(999);
    expect(done).toBe(false);
    await clock.advance(1);
    expect(done).toBe(true);
    expect(clock.now()).toBe(1000);
  });
});

describe('SimulatedDriver timing model', () => {
  it('restores in guest memory / disk bandwidth (+ overhead)', async () => {
    const clock = new VirtualClock();
    const d = new SimulatedDriver({ clock, timings: { diskReadMiBps: 100, diskWriteMiBps: 50, opOverheadMs: 0, guestBaseMiB: 0, touchMiBps: 1000 } });
    await running(d, clock, 'dpt-t', 1024, 500);
    const t0 = clock.now();
    await d.managedSave('dpt-t');
    expect(clock.now() - t0).toBe(10_000); // 500 MiB at 50 MiB/s
    const t1 = clock.now();
    await d.restore('dpt-t');
    expect(clock.now() - t1).toBe(5_000); // 500 MiB at 100 MiB/s
  });

  it('migrates live in used memory / link bandwidth, re-sending what the guest dirties', async () => {
    const clock = new VirtualClock();
    const net = new SimNetwork();
    const a = new SimulatedDriver({ clock, hostname: 'a', network: net, timings: { linkMiBps: 100, dirtyMiBps: 0, opOverheadMs: 0, migrationDowntimeMs: 50, guestBaseMiB: 200 } });
    const b = new SimulatedDriver({ clock, hostname: 'b', network: net });
    await running(a, clock, 'dpt-m');
    const before = Math.max(...counterValues(a.serialLog('/serial/dpt-m')));
    const res = await a.migrateLive('dpt-m', { uri: 'sim://b' }, { onProgress: () => undefined });
    expect(res).toMatchObject({ changed: true, state: 'running', durationMs: 2050, downtimeMs: 50 });
    expect(await a.state('dpt-m')).toBe('missing');
    expect(await b.state('dpt-m')).toBe('running');
    await clock.advance(1000);
    const after = counterValues(b.serialLog('/serial/dpt-m'));
    expect(after[0]).toBe(before + 1); // memory moved with it: the counter goes on
    await expect(b.migrateLive('dpt-m', { uri: 'sim://nowhere' })).rejects.toBeInstanceOf(HostUnreachable);
  });

  it('refuses a migration when the target lacks memory', async () => {
    const clock = new VirtualClock();
    const net = new SimNetwork();
    const a = new SimulatedDriver({ clock, hostname: 'a', network: net });
    new SimulatedDriver({ clock, hostname: 'small', network: net, memoryMiB: 1024 });
    await running(a, clock, 'dpt-big', 2048);
    await expect(a.migrateLive('dpt-big', { uri: 'sim://small' })).rejects.toBeInstanceOf(InsufficientResources);
    expect(await a.state('dpt-big')).toBe('running');
  });
});

describe('SimulatedDriver faults', () => {
  it('injects errors and delays into matching calls, a given number of times', async () => {
    const clock = new VirtualClock();
    const d = new SimulatedDriver({ clock });
    await running(d, clock, 'dpt-f');
    d.injectFault({ operation: 'managedSave', domain: 'dpt-f', times: 2, delayMs: 700, error: () => new LibvirtDown('sim://x', 'injected') });
    const t0 = clock.now();
    await expect(d.managedSave('dpt-f')).rejects.toBeInstanceOf(LibvirtDown);
    expect(clock.now() - t0).toBe(700);
    await expect(d.managedSave('dpt-f')).rejects.toBeInstanceOf(LibvirtDown);
    expect((await d.managedSave('dpt-f')).state).toBe('saved');
  });

  it('aborts or times out a long operation without changing the domain', async () => {
    const clock = new VirtualClock({ autoAdvance: false });
    const d = new SimulatedDriver({ clock, timings: { diskWriteMiBps: 1 } });
    await d.define(spec('dpt-a'));
    await drive(clock, d.start('dpt-a'));
    const ac = new AbortController();
    const saving = d.managedSave('dpt-a', { signal: ac.signal });
    for (let i = 0; i < 10; i++) await clock.advance(100);
    ac.abort();
    await expect(saving).rejects.toBeInstanceOf(OperationAborted);
    expect(await d.state('dpt-a')).toBe('running');
    const t0 = clock.now();
    await expect(drive(clock, d.managedSave('dpt-a', { timeoutMs: 2000 }))).rejects.toBeInstanceOf(OperationTimeout);
    expect(clock.now() - t0).toBeLessThanOrEqual(2100);
    expect(await d.state('dpt-a')).toBe('running');
  });

  it('crashes a guest: the domain is crashed until destroyed, and says so in an event', async () => {
    const clock = new VirtualClock();
    const d = new SimulatedDriver({ clock });
    await running(d, clock, 'dpt-c');
    const ac = new AbortController();
    const seen: string[] = [];
    const loop = (async () => {
      for await (const e of d.events({ signal: ac.signal })) seen.push(`${e.name}:${e.type}`);
    })();
    d.crashGuest('dpt-c');
    expect(await d.state('dpt-c')).toBe('crashed');
    expect(await d.destroy('dpt-c')).toEqual({ changed: true, state: 'shutoff' });
    await new Promise((r) => setImmediate(r));
    ac.abort();
    await loop;
    expect(seen).toEqual(['dpt-c:crashed', 'dpt-c:stopped']);
  });

  it('runs a count-to batch guest to its result and powers it off when asked', async () => {
    const clock = new VirtualClock();
    const d = new SimulatedDriver({ clock });
    await d.define(guestDomainSpec({ name: 'dpt-b', serialLogPath: '/serial/dpt-b', image, task: { mode: 'count-to:5', poweroffWhenDone: true } }));
    await d.start('dpt-b');
    await clock.advance(5000);
    const log = d.serialLog('/serial/dpt-b');
    expect(log).toContain('PROGRESS 5/5');
    expect(log).toContain('RESULT count=5');
    expect(await d.state('dpt-b')).toBe('shutoff');
  });
});
