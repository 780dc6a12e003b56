#!/usr/bin/env node
// The office: every simulated PC's hypervisor in one process that the chaos run never kills
// (a crashed agent leaves its PC's guests running). It keeps the hypervisors' own record of
// what ran where and when (OfficeFabric), serves the agents over a Unix socket and the
// harness over the IPC channel.
import { mkdirSync, promises as fs, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import path from 'node:path';
import { isHypervisorError, realSimClock, SimulatedDriver, type DomainSpecInput, type HypervisorDriver, type SimOperation } from '@deskpool/kvm-driver';
import { OfficeFabric, desktopImage, officeHypervisor } from '@deskpool/simulator';
import { PROGRESS_FLAG, type RpcAnswer, type RpcRequest } from './rpc.js';
import { officeConfigSchema, type OfficeControl, type OfficeReply } from './messages.js';

const DISK_OPERATIONS: SimOperation[] = ['managedSave', 'restore', 'saveToFile', 'restoreFromFile', 'start'];

async function main(): Promise<void> {
  const config = officeConfigSchema.parse(JSON.parse(await fs.readFile(process.argv[2] ?? '', 'utf8')));
  // The record's clock: real time, or the moment a hypervisor event says something happened.
  let eventTime: number | null = null;
  const fabric = new OfficeFabric({ now: () => eventTime ?? Date.now(), sleep: realSimClock.sleep });
  /** Serial console paths of the domains the agents defined, by PC and domain. */
  const consoles = new Map<string, string>();
  const raw: SimulatedDriver[] = [];
  const hypervisors: HypervisorDriver[] = [];
  for (const d of config.desktops) fabric.addImage(desktopImage(d.name, d.vcpus, d.memoryMiB));
  for (const pc of config.pcs) {
    const driver = new SimulatedDriver({ hostname: pc.hostname, cpus: config.cpus, memoryMiB: config.memoryMiB, clock: realSimClock, timings: config.timings });
    const define = driver.define.bind(driver);
    driver.define = (spec, opts) => define(asOfficeBatchWork(spec, config.taskSeconds), opts);
    raw[pc.pc] = driver;
    hypervisors[pc.pc] = officeHypervisor(fabric, pc.pc, driver);
    void followEvents(driver, pc.pc);
  }

  /** Mirrors a guest's serial console to its log file, as libvirt's <serial type='file'> does. */
  /** Batch guests that printed their result and powered themselves off: their work is done. */
  const guestsDone = new Set<string>();
  // Synchronous on purpose: a console must be on disk before the answer that lets the agent
  // see its guest stopped (the agent then reads the log for the guest's result).
  const mirrorConsole = async (pc: number, name: string): Promise<void> => {
    const logPath = consoles.get(`${pc}/${name}`);
    const driver = raw[pc];
    // Only files under the run's own directory (the agents' console dirs) are written.
    if (!logPath || !driver || !logPath.startsWith(config.workDir)) return;
    mkdirSync(path.dirname(logPath), { recursive: true });
    writeFileSync(logPath, driver.serialLog(logPath));
  };
  const mirrorPc = (pc: number): void => {
    for (const key of consoles.keys()) if (key.startsWith(`${pc}/`)) void mirrorConsole(pc, key.slice(key.indexOf('/') + 1));
  };

  // A guest that powers itself off (its work done) stops running without any call: the
  // hypervisor's events close its interval at the moment it happened.
  async function followEvents(driver: SimulatedDriver, pc: number): Promise<void> {
    for await (const ev of driver.events()) {
      if (ev.type !== 'stopped' && ev.type !== 'crashed' && ev.type !== 'saved' && ev.type !== 'migrated') continue;
      await mirrorConsole(pc, ev.name).catch(() => undefined);
      if (ev.type === 'stopped' && ev.name.startsWith('dp-task-') && ev.detail === 'Shutdown' && /DESKPOOL-GUEST DONE rc=0/.test(serialOf(driver, pc, ev.name))) guestsDone.add(ev.name);
      eventTime = ev.at.getTime();
      fabric.markStopped(ev.name, pc);
      eventTime = null;
    }
  }
  function serialOf(driver: SimulatedDriver, pc: number, name: string): string {
    const logPath = consoles.get(`${pc}/${name}`) ?? `/var/log/deskpool/${name}.log`;
    return driver.serialLog(logPath);
  }
  // Running guests' consoles grow: keep their files current, and let lazy guest models advance.
  setInterval(() => {
    for (const key of consoles.keys()) {
      const [pc, name] = key.split('/') as [string, string];
      void raw[Number(pc)]?.state(name).then(() => mirrorConsole(Number(pc), name)).catch(() => undefined);
    }
  }, 1000).unref();

  // Each desktop's image is installed on its owner's PC, as an admin would have set it up.
  for (const d of config.desktops) await raw[d.pc]?.define(desktopImage(d.name, d.vcpus, d.memoryMiB));

  const serve = (socket: Socket): void => {
    let buffer = '';
    socket.setEncoding('utf8');
    socket.on('error', () => undefined);
    const answer = (a: RpcAnswer): void => {
      if (!socket.destroyed) socket.write(`${JSON.stringify(a)}\n`);
    };
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const req = JSON.parse(buffer.slice(0, nl)) as RpcRequest;
        buffer = buffer.slice(nl + 1);
        void handle(req, answer);
      }
    });
  };

  const handle = async (req: RpcRequest, answer: (a: RpcAnswer) => void): Promise<void> => {
    const hv = hypervisors[req.pc] as unknown as Record<string, (...a: unknown[]) => Promise<unknown>> | undefined;
    try {
      const fn = hv?.[req.method];
      if (!hv || typeof fn !== 'function') throw new Error(`PC ${req.pc} has no hypervisor method ${req.method}`);
      const args = req.args.map((a) => {
        if (a === null || typeof a !== 'object' || Array.isArray(a) || !(PROGRESS_FLAG in a)) return a;
        const { [PROGRESS_FLAG]: _flag, ...rest } = a as Record<string, unknown>;
        return { ...rest, onProgress: (progress: unknown) => answer({ id: req.id, progress: progress as never }) };
      });
      if (req.method === 'define') {
        const spec = args[0] as { name?: string; serialLogPath?: string } | undefined;
        if (spec?.name && spec.serialLogPath) consoles.set(`${req.pc}/${spec.name}`, spec.serialLogPath);
      }
      // The guest keeps running when the agent that asked has died: the call completes regardless.
      const value = await fn(...args);
      // The call may have advanced a guest (its model runs lazily): its console first.
      mirrorPc(req.pc);
      answer({ id: req.id, ok: true, value });
    } catch (err) {
      if (isHypervisorError(err)) answer({ id: req.id, ok: false, error: { code: err.code, message: err.message, hint: err.hint, hypervisor: true } });
      else answer({ id: req.id, ok: false, error: { code: 'OFFICE_ERROR', message: (err as Error).message, hypervisor: false } });
    }
  };

  await fs.rm(config.socketPath, { force: true });
  const server = createServer(serve);
  await new Promise<void>((resolve) => server.listen(config.socketPath, resolve));

  const control = async (msg: OfficeControl): Promise<OfficeReply> => {
    switch (msg.type) {
      case 'record':
        return {
          id: msg.id,
          type: 'record',
          intervals: fabric.intervals,
          domains: await Promise.all(raw.map(async (d, pc) => ({ pc, domains: (await d.list()).map((x) => ({ name: x.name, state: x.state })) }))),
          files: raw.map((d, pc) => ({ pc, paths: msg.paths.filter((p) => d.hasFile(p)) })),
          guestsDone: [...guestsDone],
        };
      case 'slow-disk': {
        const driver = raw[msg.pc];
        const removers = driver ? DISK_OPERATIONS.map((operation) => driver.injectFault({ operation, delayMs: msg.delayMs, times: Infinity })) : [];
        setTimeout(() => removers.forEach((r) => r()), msg.durationMs);
        return { id: msg.id, type: 'ok' };
      }
    }
  };

  process.on('message', (m) => {
    const msg = m as OfficeControl;
    void control(msg).then(
      (reply) => process.send?.(reply),
      (err: unknown) => process.send?.({ id: msg.id, type: 'error', message: (err as Error).message } satisfies OfficeReply),
    );
  });
  process.on('disconnect', () => process.exit(0));
  process.send?.({ id: 0, type: 'ok' } satisfies OfficeReply);
}

/**
 * The office's batch workload: every batch guest counts for `seconds` of guest time (kept across
 * checkpoints), prints its result and powers itself off, whatever command it was given.
 */
function asOfficeBatchWork(spec: DomainSpecInput, seconds: number): DomainSpecInput {
  if (!spec.name.startsWith('dp-task-') || !spec.boot) return spec;
  const steps = Math.max(1, Math.round((seconds * 1000) / 200));
  const rest = spec.boot.cmdline?.split(' ').filter((p) => p && !p.startsWith('deskpool.mode=') && !p.startsWith('deskpool.poweroff=')) ?? [];
  return { ...spec, boot: { ...spec.boot, cmdline: [...rest, `deskpool.mode=count-to:${steps}`, 'deskpool.poweroff=1'].join(' ') } };
}

main().catch((err: unknown) => {
  process.stderr.write(`chaos office: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
