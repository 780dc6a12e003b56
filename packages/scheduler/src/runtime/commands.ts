// The planning core's commands in the agent protocol's words. Pure functions.
import { createHash } from 'node:crypto';
import type { AgentCommandKind, CommandFrameInput } from '@deskpool/protocol';
import type { Command, Operation } from '../core/types.js';
import type { BatchBoot } from './domain-specs.js';
import { batchDomainNameOf, checkpointPathOf, savedStatePathOf } from './mapping.js';

const WIRE_KEY = /^op-[0-9a-f]{40}$/;

/**
 * The idempotency key an operation has on the wire and in `operations.idempotency_key`.
 * The core's keys ("<event>/<type>/<subject>/g<generation>") may be long and contain "/",
 * which the agent protocol does not allow, so they are hashed; hashing is deterministic, so a
 * replayed event still yields the same key. Already-hashed keys map to themselves.
 */
export function wireKey(coreKey: string): string {
  if (WIRE_KEY.test(coreKey)) return coreKey;
  return `op-${createHash('sha256').update(coreKey).digest('hex').slice(0, 40)}`;
}

/** What the core's subject of a command is (mirrors the core's own rule). */
export function subjectOfCommand(cmd: Command): Operation['subject'] {
  if ('vmId' in cmd) return { kind: 'vm', id: cmd.vmId };
  if ('taskId' in cmd) return { kind: 'task', id: cmd.taskId };
  if (cmd.type === 'wakeHost') return { kind: 'host', id: cmd.targetHostId };
  return { kind: 'host', id: cmd.hostId };
}

/** Names the agent needs that the core does not carry. */
export interface CommandNames {
  /** libvirt domain name of a desktop VM. */
  vmName(vmId: string): string | undefined;
  /** Host name (the peer a state file moves to). */
  hostName(hostId: string): string | undefined;
  /** A desktop's vCPUs and memory (hot-added included) before this plan. */
  vmFootprint(vmId: string): { vcpus: number; memoryMiB: number } | undefined;
  /** A PC's Wake-on-LAN MAC address (from its inventory). */
  hostMac(hostId: string): string | undefined;
  /** A desktop's domain definition, for PCs where it is not defined yet (cold boot). */
  vmDomainSpec?(vmId: string): Record<string, unknown> | undefined;
  /** How a batch task's VM boots (its job's image, or the standard guest with its command). */
  taskBoot?(taskId: string): BatchBoot | undefined;
  /** Where live migrations reach this PC (its inventory's migrationUri and migrationDataUri). */
  hostMigrationTarget?(hostId: string): { uri: string; dataUri?: string } | undefined;
}

export interface AgentCommand {
  kind: AgentCommandKind;
  params: Record<string, unknown>;
  /** The fencing target (absent for commands about the PC itself). */
  target?: { vmId: string; domainName: string; generation: number };
  /** Wire keys of commands the agent must see finished first (the core's `after`). */
  after?: string[];
}

/**
 * The agent command that carries out a core command, or null when a name the agent needs is
 * unknown (a desktop without a domain name, a peer without a host name, a PC without a MAC):
 * such an operation stays pending and is audited, rather than sent half-specified.
 *
 * Ordering: the agent runs commands for one VM in arrival order but different VMs side by
 * side, so plan order on the channel is not enough (a restore would race the checkpoint that
 * makes its room). The core's `after` therefore travels on the wire, as wire keys.
 */
export function agentCommandFor(cmd: Command, names: CommandNames): AgentCommand | null {
  const command = agentCommandWithoutOrdering(cmd, names);
  if (!command || cmd.after.length === 0) return command;
  return { ...command, after: cmd.after.map(wireKey) };
}

function agentCommandWithoutOrdering(cmd: Command, names: CommandNames): AgentCommand | null {
  const vmTarget = (vmId: string): AgentCommand['target'] | null => {
    const domainName = names.vmName(vmId);
    return domainName ? { vmId, domainName, generation: cmd.generation } : null;
  };
  const taskTarget = (taskId: string): AgentCommand['target'] => ({ vmId: taskId, domainName: batchDomainNameOf(taskId), generation: cmd.generation });
  switch (cmd.type) {
    case 'suspendDesktop': {
      const target = vmTarget(cmd.vmId);
      return target ? { kind: 'suspend', params: {}, target } : null;
    }
    case 'restoreDesktop': {
      const target = vmTarget(cmd.vmId);
      if (!target) return null;
      // A local saved state may have been moved here from another PC: the agent restores from
      // that file when the desktop has no managed save here.
      if (cmd.from.kind === 'local') return { kind: 'restore', params: { statePath: savedStatePathOf(target.domainName) }, target };
      if (cmd.from.kind === 'shared') return { kind: 'restore', params: {}, target };
      const spec = names.vmDomainSpec?.(cmd.vmId);
      return { kind: 'start', params: spec ? { spec } : {}, target };
    }
    case 'migrateDesktop': {
      // The target confirms arrival; the migration itself is the source's migrate-out (see
      // migrateOutFor), sent alongside. Without the target's migration URI neither can be sent.
      const target = vmTarget(cmd.vmId);
      if (!target || !names.hostMigrationTarget?.(cmd.hostId)) return null;
      return { kind: 'migrate-in', params: { sourceHostId: cmd.fromHostId, migrateOutKey: migrateOutKeyOf(wireKey(cmd.key)), arrivalTimeoutSeconds: MIGRATION_ARRIVAL_TIMEOUT_SECONDS }, target };
    }
    case 'moveSavedState': {
      const target = vmTarget(cmd.vmId);
      const targetHost = names.hostName(cmd.toHostId);
      if (!target || !targetHost) return null;
      const path = savedStatePathOf(target.domainName);
      return { kind: 'move-state', params: { path, targetHost, targetPath: path }, target };
    }
    case 'moveCheckpoint': {
      const targetHost = names.hostName(cmd.toHostId);
      if (!targetHost) return null;
      const path = checkpointPathOf(cmd.taskId);
      return { kind: 'move-state', params: { path, targetHost, targetPath: path }, target: taskTarget(cmd.taskId) };
    }
    case 'checkpointBatch':
      return { kind: 'checkpoint-batch', params: { taskId: cmd.taskId, path: checkpointPathOf(cmd.taskId) }, target: taskTarget(cmd.taskId) };
    case 'placeTask':
    case 'resumeTask': {
      // A resume finds its checkpoint file at the conventional path when it is on that PC (or
      // on shared storage); the agent falls back to a managed save, then to a cold boot.
      const restoreFrom = cmd.type === 'resumeTask' ? { restoreFrom: checkpointPathOf(cmd.taskId) } : {};
      return { kind: 'run-batch', params: { taskId: cmd.taskId, ...names.taskBoot?.(cmd.taskId), ...restoreFrom }, target: taskTarget(cmd.taskId) };
    }
    case 'hotplug': {
      const target = vmTarget(cmd.vmId);
      const now = names.vmFootprint(cmd.vmId);
      if (!target || !now) return null;
      // The core speaks in deltas, the agent in absolute sizes; only what changes is sent.
      const params: Record<string, unknown> = {};
      if (cmd.addCores !== 0) params.vcpus = now.vcpus + cmd.addCores;
      if (cmd.addMemoryMiB !== 0) params.memoryMiB = now.memoryMiB + cmd.addMemoryMiB;
      return { kind: 'hotplug', params, target };
    }
    case 'sleepHost':
      return { kind: 'sleep-host', params: { mode: 'suspend' } };
    case 'deleteSavedState': {
      const target = vmTarget(cmd.vmId);
      return target ? { kind: 'delete-state', params: { path: savedStatePathOf(target.domainName) }, target } : null;
    }
    case 'stopBatch':
      return { kind: 'stop-batch', params: { taskId: cmd.taskId, then: cmd.then }, target: taskTarget(cmd.taskId) };
    case 'wakeHost': {
      const mac = names.hostMac(cmd.targetHostId);
      return mac ? { kind: 'wake-host', params: { targetHostId: cmd.targetHostId, mac } } : null;
    }
    case 'reconcileHost': {
      // A desktop left out of the list would be destroyed on the host: never send a partial one.
      const vms: { vmId: string; domainName: string; generation: number }[] = [];
      for (const v of cmd.expect.vms) {
        const domainName = names.vmName(v.vmId);
        if (!domainName) return null;
        vms.push({ vmId: v.vmId, domainName, generation: v.generation });
      }
      const tasks = cmd.expect.tasks.map((t) => ({ taskId: t.taskId, domainName: batchDomainNameOf(t.taskId), generation: t.generation }));
      return { kind: 'reconcile', params: { expect: { vms, tasks } } };
    }
  }
}

/**
 * How long the target of a live migration waits for the desktop to arrive before it reports
 * NOT_ARRIVED (the planner then keeps it on the source). Long, because a migration of a busy
 * desktop over an office network can take minutes, and giving up while it still runs would
 * leave the database naming the wrong PC.
 */
export const MIGRATION_ARRIVAL_TIMEOUT_SECONDS = 1800;

/** Wire key of the source's half of a live migration, from the target half's key. */
export const migrateOutKeyOf = (migrateInKey: string): string => `${migrateInKey}.out`;
/** The target half's key, when `key` is a source half's. */
export const migrateInKeyOf = (key: string): string | undefined => (key.endsWith('.out') ? key.slice(0, -'.out'.length) : undefined);

/**
 * The source's half of a live migration: migrate-out to the target PC's advertised URI, fenced
 * with the same generation as the target's migrate-in. null for every other command, or when a
 * name is unknown (then the migrate-in is not sent either).
 */
export function migrateOutFor(cmd: Command, names: CommandNames): { hostId: string; command: AgentCommand } | null {
  if (cmd.type !== 'migrateDesktop') return null;
  const domainName = names.vmName(cmd.vmId);
  const to = names.hostMigrationTarget?.(cmd.hostId);
  if (!domainName || !to) return null;
  return {
    hostId: cmd.fromHostId,
    command: {
      kind: 'migrate-out',
      params: { targetUri: to.uri, live: true, ...(to.dataUri ? { migrationUri: to.dataUri } : {}) },
      target: { vmId: cmd.vmId, domainName, generation: cmd.generation },
    },
  };
}

/** The protocol frame for an operation row; validated by the sender against commandFrameSchema. */
export function commandFrameFor(idempotencyKey: string, operationId: string, command: AgentCommand): CommandFrameInput {
  return {
    type: 'command',
    idempotencyKey,
    operationId,
    kind: command.kind,
    ...(command.target ? { target: command.target } : {}),
    ...(command.after && command.after.length > 0 ? { after: command.after } : {}),
    params: command.params,
  } as CommandFrameInput;
}
