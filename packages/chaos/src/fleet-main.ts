#!/usr/bin/env node
// An agent fleet: one process running many PCs' agents (startAgent), each with its own
// journal and state directory and a link to the APIs; the hypervisors are in the office
// process. The chaos run kills this process mid-command and starts it again.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { agentConfigSchema, startAgent, systemClock, type Clock, type CredentialFile, type RunningAgent } from '@deskpool/agent';
import { simulatedInventory } from './inventory.js';
import { AgentLink } from './link.js';
import { fleetConfigSchema, type FleetControl, type FleetReply } from './messages.js';
import { OfficeClient, remoteDriver } from './rpc.js';

/** The wall clock, shifted by this PC's skew (which the harness changes at run time). */
function skewedClock(skew: () => number): Clock {
  return { now: () => Date.now() + skew(), setTimeout: systemClock.setTimeout, clearTimeout: systemClock.clearTimeout };
}

async function main(): Promise<void> {
  const config = fleetConfigSchema.parse(JSON.parse(await fs.readFile(process.argv[2] ?? '', 'utf8')));
  const office = new OfficeClient(config.officeSocket);
  await office.connect();
  const links = new Map<number, AgentLink>();
  const skews = new Map<number, number>(Object.entries(config.skewMs).map(([pc, ms]) => [Number(pc), ms]));
  const agents: RunningAgent[] = [];

  await Promise.all(
    config.agents.map(async (a) => {
      const link = new AgentLink(config.apis);
      link.partitioned = config.partitioned.includes(a.pc);
      links.set(a.pc, link);
      const port = await link.listen();
      const credential = JSON.parse(await fs.readFile(path.join(a.stateDir, 'credential.json'), 'utf8')) as CredentialFile;
      // The evening from this agent's first start (a loaded machine starts agents late; the
      // person is there when their PC comes up); the morning at its absolute times.
      const now = Date.now();
      const offsets = [...(config.firstStart ? a.evening : []), ...a.morning.filter((t) => t >= now).map((t) => t - now)];
      const tracePath = path.join(a.stateDir, 'presence.trace');
      await fs.writeFile(tracePath, offsets.map((o) => `${JSON.stringify({ offsetMs: o, event: 'activity' })}\n`).join(''));
      const agentConfig = agentConfigSchema.parse({
        serverUrl: `http://127.0.0.1:${port}`,
        stateDir: a.stateDir,
        // Consoles inside the run's directory (the office mirrors guests' consoles only there),
        // one path for every PC as on real PCs: the agent reads a batch guest's result from it.
        consoleDir: path.join(path.dirname(path.dirname(a.stateDir)), 'consoles'),
        presenceSources: [{ kind: 'trace', path: tracePath }],
        driver: { kind: 'simulated' },
        // The person's idle threshold at the PC; the pool's rule (1 min, counted from the last
        // input) decides when the desktop is suspended.
        idleThresholdSeconds: 10,
        domainPollSeconds: 5,
        inventoryIntervalSeconds: 3600,
        reconnectInitialMs: 200,
        reconnectMaxMs: 2000,
      });
      agents.push(
        await startAgent({
          config: agentConfig,
          credential,
          driver: remoteDriver(office, a.pc, a.hostname),
          clock: skewedClock(() => skews.get(a.pc) ?? 0),
          libvirtUri: null,
          inventory: async () => simulatedInventory(a.pc, a.hostname, config.cpus, config.memoryMiB),
          executor: { testOnlyDisableFencing: config.testOnlyDisableFencing },
          log: (m) => {
            if (/fail|error|refus|reconcil/i.test(m)) process.stdout.write(`pc${a.pc}: ${m}\n`);
          },
        }),
      );
    }),
  );

  const control = (msg: FleetControl): FleetReply => {
    switch (msg.type) {
      case 'cut':
        for (const [pc, link] of links) if (msg.pc === null || msg.pc === pc) link.cut();
        return { id: msg.id, type: 'ok' };
      case 'partition':
        links.get(msg.pc)?.partition(msg.on);
        return { id: msg.id, type: 'ok' };
      case 'skew':
        skews.set(msg.pc, msg.ms);
        return { id: msg.id, type: 'ok' };
    }
  };
  process.on('message', (m) => process.send?.(control(m as FleetControl)));
  const stop = async (): Promise<void> => {
    await Promise.allSettled(agents.map((a) => a.stop()));
    for (const l of links.values()) l.close();
    office.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop());
  process.on('disconnect', () => void stop());
  process.send?.({ id: 0, type: 'ok' } satisfies FleetReply);
}

main().catch((err: unknown) => {
  process.stderr.write(`chaos fleet: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
