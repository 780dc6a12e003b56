// Domain specs, batch boots and the two halves of a live migration on the wire. Pure mapping.
import { DomainSpecSchema } from '@deskpool/kvm-driver';
import { commandFrameSchema } from '@deskpool/protocol';
import { describe, expect, it } from 'vitest';
import type { Command } from '../src/core/types.js';
import { agentCommandFor, commandFrameFor, MIGRATION_ARRIVAL_TIMEOUT_SECONDS, migrateInKeyOf, migrateOutFor, migrateOutKeyOf, wireKey, type CommandNames } from '../src/runtime/commands.js';
import { batchBootOf, desktopDomainSpec } from '../src/runtime/domain-specs.js';
import { companionPlanned, isCompanionOperation } from '../src/runtime/mapping.js';

const desktopRow = { name: 'dpt-alice', vcpus: 2, maxVcpus: 4, memoryMiB: 2048, maxMemoryMiB: 4096, diskLocation: '/var/lib/deskpool/desktops/alice.qcow2' };

const names: CommandNames = {
  vmName: (id) => (id === 'v1' ? 'dpt-alice' : undefined),
  hostName: (id) => (id === 'h2' ? 'pc-2' : undefined),
  vmFootprint: () => undefined,
  hostMac: () => undefined,
  vmDomainSpec: (id) => (id === 'v1' ? desktopDomainSpec(desktopRow) : undefined),
  taskBoot: (id) => (id === 't1' ? batchBootOf({ name: 'count', command: ['dp-count-to', '5'], env: { MODE: 'fast' } }, 'dp-task-t1', 3) : undefined),
  hostMigrationTarget: (id) => (id === 'h2' ? { uri: 'qemu+ssh://root@10.0.0.2/system', dataUri: 'tcp://10.0.0.2' } : undefined),
};
const base = { key: 'ev-1/x/v1/g4', cause: { eventId: 'ev-1', event: 'signIn' as const, rule: 'desktop.hotDesk' }, hostId: 'h2', generation: 4, after: [] };

function frameOf(cmd: Command, n: CommandNames = names): unknown {
  const agent = agentCommandFor(cmd, n);
  return agent ? commandFrameSchema.parse(commandFrameFor(wireKey(cmd.key), 'row-1', agent)) : null;
}

describe('domain specs on the wire', () => {
  it("a desktop's cold boot carries its definition, which passes the driver's schema once the PC fills domain type and console", () => {
    const frame = frameOf({ ...base, type: 'restoreDesktop', vmId: 'v1', from: { kind: 'coldBoot' } }) as { kind: string; params: { spec: Record<string, unknown> } };
    expect(frame.kind).toBe('start');
    expect(frame.params.spec).toEqual({
      name: 'dpt-alice',
      vcpus: 2,
      maxVcpus: 4,
      memoryMiB: 2048,
      maxMemoryMiB: 4096,
      disks: [{ path: '/var/lib/deskpool/desktops/alice.qcow2', format: 'qcow2', target: 'vda' }],
    });
    expect(DomainSpecSchema.safeParse({ ...frame.params.spec, domainType: 'qemu', serialLogPath: '/tmp/c.log' }).success).toBe(true);
  });

  it('sends no spec for a desktop whose disk location is not an image path (adopted domains)', () => {
    expect(desktopDomainSpec({ ...desktopRow, diskLocation: 'none' })).toBeUndefined();
    expect(frameOf({ ...base, type: 'restoreDesktop', vmId: 'v1', from: { kind: 'coldBoot' } }, { ...names, vmDomainSpec: () => undefined })).toMatchObject({ kind: 'start', params: {} });
  });

  it('a restore from saved state carries no spec', () => {
    expect(frameOf({ ...base, type: 'restoreDesktop', vmId: 'v1', from: { kind: 'shared' } })).toEqual(expect.objectContaining({ kind: 'restore', params: {} }));
  });

  it("a command job's task runs in the standard guest with its command, environment, index and size", () => {
    const frame = frameOf({ ...base, type: 'placeTask', taskId: 't1', resources: { cores: 1, memoryMiB: 1024, diskGiB: 0, gpus: 0 } });
    expect(frame).toMatchObject({
      kind: 'run-batch',
      target: { vmId: 't1', domainName: 'dp-task-t1', generation: 4 },
      params: { taskId: 't1', guest: { command: ['dp-count-to', '5'], env: { MODE: 'fast' }, index: 3, vcpus: 1, memoryMiB: 1024 } },
    });
    expect(frame).not.toHaveProperty('params.restoreFrom');
  });

  it("an image job's task boots its image; a resume names the conventional checkpoint file", () => {
    const boot = batchBootOf({ name: 'img', image: '/srv/images/sim.qcow2', cores: 2, memoryMiB: 512 }, 'dp-task-t1', 0);
    expect(boot).toEqual({ spec: { name: 'dp-task-t1', vcpus: 2, maxVcpus: 2, memoryMiB: 512, maxMemoryMiB: 512, disks: [{ path: '/srv/images/sim.qcow2', format: 'qcow2', target: 'vda' }] } });
    const resume = frameOf({ ...base, type: 'resumeTask', taskId: 't1', resources: { cores: 1, memoryMiB: 1024, diskGiB: 0, gpus: 0 }, from: { kind: 'shared' } });
    expect(resume).toMatchObject({ kind: 'run-batch', params: { taskId: 't1', restoreFrom: '/var/lib/deskpool/checkpoints/t1.save' } });
  });

  it('a job spec that no longer parses gives no boot (the agent then says the domain is not defined)', () => {
    expect(batchBootOf({ name: 'bad', cores: -1 }, 'dp-task-t1', 0)).toBeUndefined();
  });
});

describe('live migration as two halves', () => {
  const migrate: Command = { ...base, type: 'migrateDesktop', vmId: 'v1', fromHostId: 'h1' };

  it('the target confirms arrival, waiting for it, and names the source half', () => {
    const key = wireKey(migrate.key);
    expect(frameOf(migrate)).toMatchObject({
      kind: 'migrate-in',
      target: { vmId: 'v1', domainName: 'dpt-alice', generation: 4 },
      params: { sourceHostId: 'h1', migrateOutKey: `${key}.out`, arrivalTimeoutSeconds: MIGRATION_ARRIVAL_TIMEOUT_SECONDS },
    });
  });

  it("the source migrates out live to the target's advertised URI, under the same generation", () => {
    const out = migrateOutFor(migrate, names);
    expect(out).toEqual({
      hostId: 'h1',
      command: {
        kind: 'migrate-out',
        params: { targetUri: 'qemu+ssh://root@10.0.0.2/system', live: true, migrationUri: 'tcp://10.0.0.2' },
        target: { vmId: 'v1', domainName: 'dpt-alice', generation: 4 },
      },
    });
    const key = migrateOutKeyOf(wireKey(migrate.key));
    expect(commandFrameSchema.safeParse(commandFrameFor(key, 'row-2', out!.command)).success).toBe(true);
    expect(migrateInKeyOf(key)).toBe(wireKey(migrate.key));
    expect(migrateInKeyOf(wireKey(migrate.key))).toBeUndefined();
  });

  it('without the target PC\'s migration URI neither half is sent', () => {
    const unknownTarget = { ...migrate, hostId: 'h3' };
    expect(frameOf(unknownTarget)).toBeNull();
    expect(migrateOutFor(unknownTarget, names)).toBeNull();
  });

  it('other commands have no source half', () => {
    expect(migrateOutFor({ ...base, type: 'suspendDesktop', vmId: 'v1', saveTo: { kind: 'shared' } }, names)).toBeNull();
  });

  it("the source half's planned record is recognised and keeps the event that made it", () => {
    const planned = companionPlanned(wireKey(migrate.key), migrate);
    expect(isCompanionOperation(planned)).toBe(true);
    expect(planned).toMatchObject({ cause: { eventId: 'ev-1' } });
    expect(isCompanionOperation({ type: 'migrateDesktop', subject: { kind: 'vm', id: 'v1' } })).toBe(false);
    expect(isCompanionOperation(null)).toBe(false);
  });
});
