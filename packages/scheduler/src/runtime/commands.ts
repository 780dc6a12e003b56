// The planning core's commands in the agent protocol's words. Pure functions.
import { createHash } from 'node:crypto';
import type { AgentCommandKind, CommandFrameInput } from '@deskpool/protocol';
import type { Command, Operation } from '../core/types.js';
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
      return cmd.from.kind === 'coldBoot' ? { kind: 'start', params: {}, target } : { kind: 'restore', params: {}, target };
    }
    case 'migrateDesktop': {
      const target = vmTarget(cmd.vmId);
      return target ? { kind: 'migrate-in', params: { sourceHostId: cmd.fromHostId }, target } : null;
    }
    case 'moveSavedState': {
      const target = vmTarget(cmd.vmId);
      const targetHost = names.hostName(cmd.toHostId);
      if (!target || !targetHost) return null;
      const path = savedStatePathOf(target.domainName);
      return { kind: 'move-state', params: { path, targetHost, targetPath: path }, target };
    }
    case 'checkpointBatch':
      return { kind: 'checkpoint-batch', params: { taskId: cmd.taskId, path: checkpointPathOf(cmd.taskId) }, target: taskTarget(cmd.taskId) };
    case 'placeTask':
    case 'resumeTask':
      return { kind: 'run-batch', params: { taskId: cmd.taskId }, target: taskTarget(cmd.taskId) };
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
