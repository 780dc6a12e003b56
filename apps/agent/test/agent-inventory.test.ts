// A PC whose hypervisor is simulated reports the hardware it is given, not the machine the
// agent process happens to run on (the simulator runs many PCs in one process).
import { once } from 'node:events';
import { promises as fs } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { SimulatedDriver } from '@deskpool/kvm-driver';
import { AGENT_PROTOCOL_VERSION, type HostInventory, type UpFrame } from '@deskpool/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { startAgent, type RunningAgent } from '../src/agent.js';
import { systemClock } from '../src/clock.js';
import { agentConfigSchema } from '../src/config.js';

const inventory: HostInventory = {
  hostname: 'pc-simulated-007',
  cpuCores: 8,
  memoryMiB: 16384,
  diskGiB: 500,
  gpus: [],
  macAddresses: ['52:54:00:00:00:07'],
  hypervisor: { kvm: true, libvirtVersion: null, qemuVersion: null, liveMigration: true, hotplugCpu: true, hotplugMemory: true },
  agentVersion: '0.1.0',
};

describe('agent inventory', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanup.reverse()) await c();
    cleanup.length = 0;
  });

  it('sends the injected inventory after connecting', async () => {
    const server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await once(server, 'listening');
    cleanup.push(() => new Promise<void>((r) => server.close(() => r())));
    const received = new Promise<UpFrame>((resolve) => {
      server.on('connection', (ws) => {
        ws.on('message', (d: Buffer) => {
          const frame = JSON.parse(d.toString()) as UpFrame;
          if (frame.type === 'hello') ws.send(JSON.stringify({ type: 'hello', protocolVersion: AGENT_PROTOCOL_VERSION, hostId: 'h-7', heartbeatIntervalSeconds: 15 }));
          if (frame.type === 'inventory') resolve(frame);
        });
      });
    });
    const stateDir = await fs.mkdtemp(path.join(os.tmpdir(), 'dpt-agent-inv-'));
    cleanup.push(() => fs.rm(stateDir, { recursive: true, force: true }));
    const tracePath = path.join(stateDir, 'presence.trace');
    await fs.writeFile(tracePath, '');
    const port = (server.address() as AddressInfo).port;
    const config = agentConfigSchema.parse({ serverUrl: `http://127.0.0.1:${port}`, stateDir, presenceSources: [{ kind: 'trace', path: tracePath }], driver: { kind: 'simulated' } });
    const agent: RunningAgent = await startAgent({
      config,
      credential: { serverUrl: config.serverUrl, hostId: 'h-7', credential: 'dph_test_credential_123456', enrolledAt: new Date().toISOString() },
      driver: new SimulatedDriver({ hostname: inventory.hostname }),
      clock: systemClock,
      libvirtUri: null,
      inventory: async () => inventory,
      log: () => undefined,
    });
    cleanup.push(() => agent.stop());
    const frame = await received;
    expect(frame).toMatchObject({ type: 'inventory', inventory });
  });
});
