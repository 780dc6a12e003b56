import { promises as fs } from 'node:fs';
import type net from 'node:net';
import path from 'node:path';
import type { DomainStateReport, HostInventory, PresenceSource } from '@deskpool/protocol';
import type { HypervisorDriver } from '@deskpool/kvm-driver';
import { AgentChannel, AgentRejected } from './channel/client.js';
import { Outbox } from './channel/outbox.js';
import type { Clock, TimerHandle } from './clock.js';
import { consoleLogFor } from './batch/console-log.js';
import { BatchTaskStore } from './batch/task-store.js';
import { BatchWatcher } from './batch/watcher.js';
import { DEFAULT_PROTECTED_DIRS } from './commands/batch-isolation.js';
import { CommandExecutor, type ExecutorOptions, type HostPower } from './commands/executor.js';
import { CommandJournal } from './commands/journal.js';
import { sftpStateMover } from './commands/state-mover.js';
import { DEFAULT_IDLE_THRESHOLD_SECONDS, channelUrlOf, socketPathOf, type AgentConfig, type PresenceSourceConfig } from './config.js';
import type { CredentialFile } from './credential.js';
import { AGENT_VERSION, collectInventory } from './inventory.js';
import { listenLocal } from './local-socket.js';
import { EventStreamSource } from './presence/event-stream-source.js';
import { EvdevSource } from './presence/evdev-source.js';
import { LogindSource } from './presence/logind-source.js';
import { PresenceMonitor } from './presence/monitor.js';
import type { PresenceInput } from './presence/source.js';
import { TraceSource } from './presence/trace-source.js';

export interface AgentDeps {
  config: AgentConfig;
  credential: CredentialFile;
  driver: HypervisorDriver;
  clock: Clock;
  /** libvirt URI for inventory, or null for a simulated hypervisor. */
  libvirtUri: string | null;
  power?: HostPower;
  /** Where wake-host broadcasts and how long `after` waits; the simulator points Wake-on-LAN at loopback. */
  executor?: ExecutorOptions;
  /** What this PC offers; default: read from the machine. A simulated PC reports its simulated hardware. */
  inventory?: () => Promise<HostInventory>;
  log(message: string): void;
}

export interface RunningAgent {
  /** Settles when the agent stops; rejects with AgentRejected when the API refuses this host. */
  readonly done: Promise<void>;
  stop(): Promise<void>;
}

export function presenceInputs(sources: readonly PresenceSourceConfig[], clock: Clock): PresenceInput[] {
  return sources.map((s) => {
    switch (s.kind) {
      case 'evdev':
        return new EvdevSource(clock, { ...(s.procDevicesPath ? { procDevicesPath: s.procDevicesPath } : {}), ...(s.devInputDir ? { devInputDir: s.devInputDir } : {}) });
      case 'logind':
        return new LogindSource(clock, s.pollSeconds * 1000, s.sessionId);
      case 'fifo':
        return new EventStreamSource(s.path, clock, 'fifo');
      case 'trace':
        return new TraceSource(clock, s.path);
    }
  });
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** Wires presence, journal, executor and channel together and runs until stopped or rejected. */
export async function startAgent(deps: AgentDeps): Promise<RunningAgent> {
  const { config, clock, driver, log } = deps;
  await fs.mkdir(config.stateDir, { recursive: true, mode: 0o700 });
  const journal = await CommandJournal.open(path.join(config.stateDir, 'journal.jsonl'));
  const batchTasks = await BatchTaskStore.open(path.join(config.stateDir, 'batch-tasks.json'));
  const outbox = new Outbox(config.outboxCapacity);
  const now = () => iso(clock.now());
  const startedAt = clock.now();
  let heartbeatSeconds = config.heartbeatIntervalSeconds;

  let resolveDone!: () => void;
  let rejectDone!: (err: Error) => void;
  const done = new Promise<void>((resolve, reject) => ((resolveDone = resolve), (rejectDone = reject)));
  done.catch(() => undefined);

  let lastInventory = '';
  let lastDomains = '';

  const sendInventory = async (force: boolean): Promise<void> => {
    let inventory: HostInventory;
    try {
      inventory = deps.inventory ? await deps.inventory() : await collectInventory(config.stateDir, deps.libvirtUri, config.migration);
    } catch (err) {
      log(`inventory collection failed: ${(err as Error).message}`);
      return;
    }
    const key = JSON.stringify(inventory);
    if (!force && key === lastInventory) return;
    lastInventory = key;
    channel.send({ type: 'inventory', at: now(), inventory });
  };

  const sendDomains = async (force: boolean): Promise<void> => {
    let domains: DomainStateReport[];
    try {
      domains = (await driver.list()).map((d) => ({ domainName: d.name, state: d.state }));
    } catch (err) {
      log(`cannot list domains: ${(err as Error).message}`);
      return;
    }
    domains.sort((a, b) => a.domainName.localeCompare(b.domainName));
    const key = JSON.stringify(domains);
    if (!force && key === lastDomains) return;
    lastDomains = key;
    channel.send({ type: 'domain-state', at: now(), domains: domains.slice(0, 1024) });
  };

  const channel: AgentChannel = new AgentChannel({
    url: channelUrlOf(config.serverUrl),
    credential: deps.credential.credential,
    ...(config.caFile ? { ca: await fs.readFile(config.caFile) } : {}),
    agentVersion: AGENT_VERSION,
    backoff: { initialMs: config.reconnectInitialMs, maxMs: config.reconnectMaxMs },
    outbox,
    clock,
    log,
    onCommand: (command) => void executor.handle(command).then(() => sendDomains(false)),
    onConnected: (hello) => {
      log(`connected to ${config.serverUrl} as host ${hello.hostId}`);
      heartbeatSeconds = hello.heartbeatIntervalSeconds;
      // A fresh snapshot after every (re)connect: the API may have missed what was summarized away.
      const presence = monitor.current;
      if (presence && presence.state !== 'unknown') {
        channel.send({ type: 'presence', at: now(), state: presence.state, idleSince: presence.idleSince === null ? null : iso(presence.idleSince), source: lastPresenceSource });
      }
      void sendInventory(true);
      void sendDomains(true);
    },
    onRejected: (err) => {
      void shutdown().then(() => rejectDone(err));
    },
  });

  // Batch VMs' console output and ends go up as task-output / task-finished frames.
  const batchWatcher = new BatchWatcher(
    batchTasks,
    driver,
    consoleLogFor(driver),
    clock,
    (event) => channel.send(event),
    log,
    (taskId, generation) => journal.taskLeaving(taskId, generation),
    { pollMs: config.batchPollSeconds * 1000 },
  );

  const executor = new CommandExecutor(
    journal,
    driver,
    clock,
    {
      progress: (idempotencyKey, percent, message) => channel.send({ type: 'op-progress', at: now(), idempotencyKey, percent, ...(message ? { message: message.slice(0, 500) } : {}) }),
      result: (r) => channel.send({ type: 'op-result', at: now(), ...r }),
      log,
    },
    deps.power,
    30_000,
    config.stateMover ? sftpStateMover(config.stateMover) : undefined,
    {
      ...(config.consoleDir ? { consoleDir: config.consoleDir } : {}),
      batch: batchWatcher,
      // The agent's own state (its credential, journal) is out of every batch VM's reach too.
      batchIsolation: { protectedDirs: [...DEFAULT_PROTECTED_DIRS, config.stateDir] },
      ...deps.executor,
    },
  );

  let lastPresenceSource: PresenceSource = config.presenceSources[0]?.kind ?? 'evdev';
  const monitor: PresenceMonitor = new PresenceMonitor(
    clock,
    (config.idleThresholdSeconds ?? deps.credential.idleThresholdSeconds ?? DEFAULT_IDLE_THRESHOLD_SECONDS) * 1000,
    presenceInputs(config.presenceSources, clock),
    (change) => {
      lastPresenceSource = change.source;
      log(`presence: ${change.state} (${change.source})`);
      channel.send({ type: 'presence', at: iso(change.at), state: change.state, idleSince: change.idleSince === null ? null : iso(change.idleSince), source: change.source });
    },
    (message) => log(`presence: ${message}`),
  );

  const localServer: net.Server = await listenLocal(socketPathOf(config), (req) => {
    log(`signin: ${req.user}`);
    channel.send({ type: 'signin', at: now(), user: req.user });
  });

  const timers: TimerHandle[] = [];
  const every = (seconds: () => number, fn: () => void): void => {
    const tick = (): void => {
      fn();
      timers[index] = clock.setTimeout(tick, seconds() * 1000);
    };
    const index = timers.length;
    timers.push(clock.setTimeout(tick, seconds() * 1000));
  };
  every(
    () => heartbeatSeconds,
    () => {
      if (!channel.connected) return; // a stale heartbeat says nothing; presence and results are buffered instead
      channel.checkAlive();
      channel.send({ type: 'heartbeat', at: now(), uptimeSeconds: (clock.now() - startedAt) / 1000 });
    },
  );
  every(() => config.domainPollSeconds, () => void sendDomains(false));
  every(() => config.inventoryIntervalSeconds, () => void sendInventory(false));

  let stopping: Promise<void> | undefined;
  const shutdown = (): Promise<void> => {
    stopping ??= (async () => {
      for (const t of timers) clock.clearTimeout(t);
      channel.stop();
      await monitor.stop();
      await batchWatcher.stop();
      await new Promise<void>((resolve) => localServer.close(() => resolve()));
      await executor.drain();
      await journal.close();
      await batchTasks.close();
    })();
    return stopping;
  };

  // Not awaited: reconciling may wait for the hypervisor, and presence must flow meanwhile.
  void executor.reconcile();
  batchWatcher.start();
  await monitor.start();
  channel.start();

  return {
    done,
    async stop() {
      await shutdown();
      resolveDone();
    },
  };
}

export { AgentRejected };
