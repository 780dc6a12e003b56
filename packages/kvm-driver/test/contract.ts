// The HypervisorDriver contract, written once and run against every implementation
// (libvirt.contract.test.ts: real libvirtd + QEMU + the tiny guest; simulated.contract.test.ts).
// One guest is booted and carried through most of the life cycle, in order, to keep the real
// run short; each step checks both the result and what the guest itself printed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DomainEvent, DomainSpecInput, HypervisorDriver, Progress } from '../src/driver.js';
import { DomainNotFound, InsufficientResources, InvalidSpec, InvalidState, LibvirtDown, type HypervisorError } from '../src/errors.js';
import { counterValues, type GuestTask } from '../src/guest.js';

export interface GuestOptions {
  memoryMiB?: number;
  maxMemoryMiB?: number;
  vcpus?: number;
  maxVcpus?: number;
  task?: GuestTask;
}

/** A hypervisor that can be stopped and started again by the test (libvirtd down mid-test). */
export interface StoppableHypervisor {
  driver: HypervisorDriver;
  guestSpec(name: string, opts?: GuestOptions): DomainSpecInput;
  stop(): Promise<void>;
  start(): Promise<void>;
  dispose(): Promise<void>;
}

export interface ContractEnv {
  driver: HypervisorDriver;
  /** A unique domain name for this run (tests use the dpt- prefix). */
  name(tag: string): string;
  /** The tiny guest's spec with a fresh serial log path. */
  guestSpec(name: string, opts?: GuestOptions): DomainSpecInput;
  serial(spec: DomainSpecInput): Promise<string>;
  /** Lets guests run (real or simulated time) until pred holds for the serial log. */
  waitForSerial(spec: DomainSpecInput, pred: (log: string) => boolean, timeoutMs?: number): Promise<string>;
  /** Lets time pass for the guests. */
  pass(ms: number): Promise<void>;
  /** An absolute directory with too little free space for a guest's saved state. */
  tinyDisk(): Promise<string>;
  /** A directory for save files. */
  tmpDir: string;
  stoppable(): Promise<StoppableHypervisor>;
  cleanup(): Promise<void>;
}

async function expectError<T extends HypervisorError>(p: Promise<unknown>, type: abstract new (...args: never[]) => T): Promise<T> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e, `expected ${type.name}`).toBeInstanceOf(type);
  const he = e as T;
  expect(he.hint.length).toBeGreaterThan(10);
  expect(he.code).toMatch(/^[A-Z_]+$/);
  return he;
}

const maxCount = (log: string): number => Math.max(0, ...counterValues(log));

/** Is `want` a subsequence of `got`? */
function inOrder(got: string[], want: string[]): boolean {
  let i = 0;
  for (const g of got) if (g === want[i]) i++;
  return i === want.length;
}

export function runDriverContract(label: string, makeEnv: () => Promise<ContractEnv>): void {
  describe(`HypervisorDriver contract: ${label}`, () => {
    let env: ContractEnv;
    let d: HypervisorDriver;
    let name: string;
    let spec: DomainSpecInput;
    const events: DomainEvent[] = [];
    const stopEvents = new AbortController();
    let eventLoop: Promise<void> = Promise.resolve();

    beforeAll(async () => {
      env = await makeEnv();
      d = env.driver;
      name = env.name('life');
      spec = env.guestSpec(name, { memoryMiB: 128, maxMemoryMiB: 256, vcpus: 1, maxVcpus: 2, task: { mode: 'counter' } });
      eventLoop = (async () => {
        for await (const e of d.events({ signal: stopEvents.signal })) events.push(e);
      })();
    });

    afterAll(async () => {
      stopEvents.abort();
      await eventLoop;
      await env?.cleanup();
    });

    it('rejects an invalid spec with the offending field named, defining nothing', async () => {
      const bad = { ...env.guestSpec(env.name('bad')), vcpus: 3, maxVcpus: 2 };
      const e = await expectError(d.define(bad), InvalidSpec);
      expect(e.issues.map((i) => i.path)).toContain('vcpus');
      const evil = await expectError(d.define({ ...env.guestSpec(env.name('x')), name: "dpt-x'><evil/>" }), InvalidSpec);
      expect(evil.issues.map((i) => i.path)).toContain('name');
      expect(await d.state(bad.name)).toBe('missing');
    });

    it('reports an unknown domain as missing, and DomainNotFound for operations on it', async () => {
      const ghost = env.name('ghost');
      expect(await d.state(ghost)).toBe('missing');
      await expectError(d.start(ghost), DomainNotFound);
      await expectError(d.stats(ghost), DomainNotFound);
      await expectError(d.managedSave(ghost), DomainNotFound);
      expect(await d.undefine(ghost)).toEqual({ changed: false, state: 'missing' });
    });

    it('defines a domain once; defining it again changes nothing', async () => {
      expect(await d.define(spec)).toEqual({ changed: true, state: 'shutoff' });
      expect(await d.define(spec)).toEqual({ changed: false, state: 'shutoff' });
      expect(await d.state(name)).toBe('shutoff');
      expect((await d.list()).find((x) => x.name === name)?.state).toBe('shutoff');
    });

    it('refuses operations that make no sense for a shut-off domain', async () => {
      await expectError(d.pause(name), InvalidState);
      await expectError(d.resume(name), InvalidState);
      await expectError(d.managedSave(name), InvalidState);
      // restore must never cold-boot a desktop whose saved state is gone
      await expectError(d.restore(name), InvalidState);
      expect(await d.destroy(name)).toEqual({ changed: false, state: 'shutoff' });
    });

    it('starts the guest, which prints its banner and counts; starting again is a no-op', async () => {
      expect(await d.start(name)).toEqual({ changed: true, state: 'running' });
      expect(await d.start(name)).toEqual({ changed: false, state: 'running' });
      const log = await env.waitForSerial(spec, (l) => maxCount(l) >= 2);
      expect(log).toContain('DESKPOOL-GUEST READY');
      expect(counterValues(log).slice(0, 2)).toEqual([1, 2]);
    });

    it('pauses (the guest stops counting) and resumes (it goes on); repeats are no-ops', async () => {
      expect(await d.pause(name)).toEqual({ changed: true, state: 'paused' });
      expect(await d.pause(name)).toEqual({ changed: false, state: 'paused' });
      expect(await d.state(name)).toBe('paused');
      const before = maxCount(await env.serial(spec));
      await env.pass(1500);
      expect(maxCount(await env.serial(spec))).toBe(before);
      expect(await d.resume(name)).toEqual({ changed: true, state: 'running' });
      expect(await d.resume(name)).toEqual({ changed: false, state: 'running' });
      const after = await env.waitForSerial(spec, (l) => maxCount(l) >= before + 2);
      expect(counterValues(after)).toContain(before + 1);
    });

    it('reports stats and lists the domain', async () => {
      const st = await d.stats(name);
      expect(st).toMatchObject({ name, state: 'running', vcpus: 1, maxVcpus: 2, maxMemoryMiB: 256 });
      expect(st.cpuTimeNs).toBeGreaterThan(0);
      expect((await d.list()).find((x) => x.name === name)?.state).toBe('running');
      const host = await d.hostInfo();
      expect(host.cpus).toBeGreaterThan(0);
      expect(host.freeMemoryMiB).toBeLessThanOrEqual(host.memoryMiB);
    });

    it('hot-plugs vCPUs and memory within the maxima, and refuses beyond them', async () => {
      expect(await d.hotplugVcpus(name, 2)).toEqual({ changed: true, state: 'running' });
      expect(await d.hotplugVcpus(name, 2)).toEqual({ changed: false, state: 'running' });
      expect((await d.stats(name)).vcpus).toBe(2);
      const tooMany = await expectError(d.hotplugVcpus(name, 3), InvalidSpec);
      expect(tooMany.issues[0]?.path).toBe('vcpus');

      expect((await d.hotplugMemory(name, 192)).changed).toBe(true);
      // The guest's balloon driver acknowledges the new size by itself, shortly.
      let mem = 0;
      for (let i = 0; i < 100 && mem !== 192; i++) {
        mem = (await d.stats(name)).memoryMiB;
        if (mem !== 192) await env.pass(200);
      }
      expect(mem).toBe(192);
      expect(await d.hotplugMemory(name, 192)).toEqual({ changed: false, state: 'running' });
      const tooMuch = await expectError(d.hotplugMemory(name, 512), InvalidSpec);
      expect(tooMuch.issues[0]?.path).toBe('memoryMiB');
      expect(await d.state(name)).toBe('running');
    });

    it('suspends to disk and restores; the guest counter continues from where it was', async () => {
      await env.waitForSerial(spec, (l) => maxCount(l) >= 3);
      const progress: Progress[] = [];
      expect(await d.managedSave(name, { onProgress: (p) => progress.push(p) })).toEqual({ changed: true, state: 'saved' });
      expect(progress.at(-1)).toMatchObject({ phase: 'done', fraction: 1 });
      expect(await d.managedSave(name)).toEqual({ changed: false, state: 'saved' });
      expect(await d.state(name)).toBe('saved');
      expect((await d.list()).find((x) => x.name === name)?.state).toBe('saved');
      const last = maxCount(await env.serial(spec));
      await env.pass(1000);
      expect(maxCount(await env.serial(spec))).toBe(last);

      expect(await d.restore(name)).toEqual({ changed: true, state: 'running' });
      expect(await d.restore(name)).toEqual({ changed: false, state: 'running' });
      const log = await env.waitForSerial(spec, (l) => maxCount(l) >= last + 3);
      const values = counterValues(log);
      const at = values.lastIndexOf(last);
      expect(values[at + 1]).toBe(last + 1);
      expect(values.slice(at + 1)).not.toContain(1);
    });

    it('a guest suspended to disk while paused comes back paused, and resumes counting', async () => {
      expect(await d.pause(name)).toEqual({ changed: true, state: 'paused' });
      expect(await d.managedSave(name)).toEqual({ changed: true, state: 'saved' });
      expect(await d.restore(name)).toEqual({ changed: true, state: 'paused' });
      expect(await d.state(name)).toBe('paused');
      const last = maxCount(await env.serial(spec));
      expect(await d.resume(name)).toEqual({ changed: true, state: 'running' });
      const values = counterValues(await env.waitForSerial(spec, (l) => maxCount(l) >= last + 2));
      expect(values[values.lastIndexOf(last) + 1]).toBe(last + 1);
    });

    it('saves to a file and restores from it; repeats are no-ops', async () => {
      const path = `${env.tmpDir}/${name}.state`;
      const saved = await d.saveToFile(name, path);
      expect(saved).toMatchObject({ changed: true, state: 'shutoff', path });
      expect(saved.bytes).toBeGreaterThan(1024 * 1024);
      expect((await d.saveToFile(name, path)).changed).toBe(false);
      const last = maxCount(await env.serial(spec));

      expect(await d.restoreFromFile(path)).toEqual({ changed: true, state: 'running', name });
      expect(await d.restoreFromFile(path)).toEqual({ changed: false, state: 'running', name });
      const values = counterValues(await env.waitForSerial(spec, (l) => maxCount(l) >= last + 2));
      expect(values[values.lastIndexOf(last) + 1]).toBe(last + 1);
    });

    it('a domain restored from a file where it is not defined is made persistent, then suspends to disk and names its image', async () => {
      const path = `${env.tmpDir}/${name}.moved`;
      await d.saveToFile(name, path);
      // As on a PC the state was moved to: the definition is not there, only the file.
      expect(await d.undefine(name)).toEqual({ changed: true, state: 'missing' });
      expect(await d.restoreFromFile(path)).toEqual({ changed: true, state: 'running', name });
      expect(await d.managedSaveImagePath(name)).toBeUndefined();
      await d.persist(name);
      expect(await d.persist(name)).toEqual({ changed: false, state: 'running' });
      expect(await d.managedSave(name)).toEqual({ changed: true, state: 'saved' });
      expect(await d.managedSaveImagePath(name)).toMatch(new RegExp(`/${name}\\.save$`));
      const last = maxCount(await env.serial(spec));
      expect(await d.restore(name)).toEqual({ changed: true, state: 'running' });
      expect(await d.managedSaveImagePath(name)).toBeUndefined();
      const values = counterValues(await env.waitForSerial(spec, (l) => maxCount(l) >= last + 2));
      expect(values[values.lastIndexOf(last) + 1]).toBe(last + 1);
    });

    it('fails with InsufficientResources(disk) when the state file does not fit, and the guest keeps running', async () => {
      const dir = await env.tinyDisk();
      const e = await expectError(d.saveToFile(name, `${dir}/${name}.state`), InsufficientResources);
      expect(e.resource).toBe('disk');
      expect(await d.state(name)).toBe('running');
      const last = maxCount(await env.serial(spec));
      await env.waitForSerial(spec, (l) => maxCount(l) > last);
    });

    it('fails with InsufficientResources(memory) to start a domain larger than the host', async () => {
      const host = await d.hostInfo();
      const bigName = env.name('big');
      const big = env.guestSpec(bigName, { memoryMiB: host.memoryMiB * 2, maxMemoryMiB: host.memoryMiB * 2 });
      await d.define(big);
      const e = await expectError(d.start(bigName), InsufficientResources);
      expect(e.resource).toBe('memory');
      expect(await d.state(bigName)).toBe('shutoff');
      expect(await d.undefine(bigName)).toEqual({ changed: true, state: 'missing' });
    });

    it('shuts the guest down gracefully; then stop and undefine are no-ops or clean', async () => {
      const res = await d.shutdown(name, { gracefulTimeoutMs: 30_000 });
      expect(res).toEqual({ changed: true, state: 'shutoff', forced: false });
      expect(await env.serial(spec)).toContain('DESKPOOL-GUEST POWEROFF');
      expect(await d.shutdown(name)).toEqual({ changed: false, state: 'shutoff', forced: false });
      expect(await d.destroy(name)).toEqual({ changed: false, state: 'shutoff' });
      await expectError(d.undefine(`${name}"`), InvalidSpec);
      expect(await d.undefine(name)).toEqual({ changed: true, state: 'missing' });
      expect(await d.state(name)).toBe('missing');
    });

    it('emitted life-cycle events in order', async () => {
      // Events arrive asynchronously; give the stream a moment to deliver the last ones. The
      // domain is undefined twice: once as if moved to another PC, once at the end.
      const undefinedCount = (): number => events.filter((e) => e.name === name && e.type === 'undefined').length;
      for (let i = 0; i < 100 && undefinedCount() < 2; i++) await new Promise((r) => setTimeout(r, 100));
      const mine = events.filter((e) => e.name === name).map((e) => e.type);
      expect(inOrder(mine, ['defined', 'started', 'suspended', 'resumed', 'saved', 'started', 'saved', 'started', 'stopped', 'undefined'])).toBe(true);
      for (const e of events) expect(e.at).toBeInstanceOf(Date);
    });

    it('raises LibvirtDown while the hypervisor service is stopped; guests survive it', async () => {
      const h = await env.stoppable();
      try {
        const n = env.name('down');
        const s = h.guestSpec(n, { task: { mode: 'counter' } });
        await h.driver.define(s);
        await h.driver.start(n);
        await env.waitForSerial(s, (l) => maxCount(l) >= 1);
        await h.stop();
        await expectError(h.driver.list(), LibvirtDown);
        await expectError(h.driver.state(n), LibvirtDown);
        await expectError(h.driver.managedSave(n), LibvirtDown);
        const last = maxCount(await env.serial(s));
        await h.start();
        expect(await h.driver.state(n)).toBe('running');
        await env.waitForSerial(s, (l) => maxCount(l) > last);
        await h.driver.destroy(n);
        await h.driver.undefine(n);
      } finally {
        await h.dispose();
      }
    });
  });
}
