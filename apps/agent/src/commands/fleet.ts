// Pieces of the fleet commands (reconcile, wake-host) that decide without touching anything.
import { createSocket } from 'node:dgram';
import type { ReconcileExpect } from '@deskpool/protocol';
import type { DomainState, DomainSummary } from '@deskpool/kvm-driver';

export interface ReconcilePlan {
  /** Running domains the control plane did not list for this host: they are stopped. */
  destroy: string[];
  foundRunningVmIds: string[];
  foundRunningTaskIds: string[];
}

/** States in which a domain occupies the host (and, for a desktop, could be written to). */
const LIVE: ReadonlySet<DomainState> = new Set(['running', 'paused', 'crashed']);

/**
 * What a fenced host must do to agree with the control plane. Listed domains are kept exactly
 * as they are: a desktop marked LOST that is still running is adopted by the scheduler, which
 * is why only running ones are reported. Unlisted domains that are live are destroyed, because
 * the control plane may already run that desktop or task elsewhere under a newer generation
 * (invariant 1). Shut-off and saved domains are never touched: a saved image may be the only
 * copy of someone's desktop (invariant 2), and a definition alone uses nothing. Domains deskpool
 * never managed on this PC (an admin's own VMs) are not ours to stop: `isManaged` says which are.
 */
export function planReconcile(expect: ReconcileExpect, domains: readonly DomainSummary[], isManaged: (domainName: string) => boolean): ReconcilePlan {
  const vmByDomain = new Map(expect.vms.map((v) => [v.domainName, v.vmId]));
  const taskByDomain = new Map(expect.tasks.map((t) => [t.domainName, t.taskId]));
  const plan: ReconcilePlan = { destroy: [], foundRunningVmIds: [], foundRunningTaskIds: [] };
  for (const d of domains) {
    const vmId = vmByDomain.get(d.name);
    const taskId = taskByDomain.get(d.name);
    if (vmId === undefined && taskId === undefined) {
      if (LIVE.has(d.state) && isManaged(d.name)) plan.destroy.push(d.name);
      continue;
    }
    if (d.state !== 'running' && d.state !== 'paused') continue;
    if (vmId !== undefined) plan.foundRunningVmIds.push(vmId);
    if (taskId !== undefined) plan.foundRunningTaskIds.push(taskId);
  }
  plan.destroy.sort();
  plan.foundRunningVmIds.sort();
  plan.foundRunningTaskIds.sort();
  return plan;
}

/** A saved-state file may go unless the desktop's domain here could still resume from it. */
export function stateFileStillNeeded(state: DomainState): boolean {
  // saved: this host still holds the desktop suspended, so the control plane's view disagrees;
  // paused or crashed: a restore here may be half done and the file the only good copy.
  return state === 'saved' || state === 'paused' || state === 'crashed';
}

/** Batch VMs carry this prefix (the scheduler names them `dp-task-<taskId>`). */
export const BATCH_DOMAIN_PREFIX = 'dp-task-';

/** Wake-on-LAN magic packet: six 0xFF bytes, then the MAC sixteen times (102 bytes). */
export function magicPacket(mac: string): Buffer {
  const hex = mac.replace(/[:-]/g, '');
  if (!/^[0-9A-Fa-f]{12}$/.test(hex)) throw new RangeError(`not a MAC address: ${mac}`);
  const macBytes = Buffer.from(hex, 'hex');
  const packet = Buffer.alloc(6 + 16 * 6, 0xff);
  for (let i = 0; i < 16; i++) macBytes.copy(packet, 6 + i * 6);
  return packet;
}

export interface WakeOnLanTarget {
  /** Broadcast address of the office segment; 255.255.255.255 reaches the local one. */
  address: string;
  port: number;
}

export const DEFAULT_WAKE_ON_LAN: WakeOnLanTarget = { address: '255.255.255.255', port: 9 };

/** Sends the magic packet once over UDP broadcast. */
export async function sendMagicPacket(mac: string, to: WakeOnLanTarget): Promise<number> {
  const packet = magicPacket(mac);
  const socket = createSocket({ type: to.address.includes(':') ? 'udp6' : 'udp4' });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, () => {
        try {
          socket.setBroadcast(true);
          socket.send(packet, to.port, to.address, (err) => (err ? reject(err) : resolve()));
        } catch (err) {
          // dgram throws for a bad port or address instead of calling back.
          reject(err as Error);
        }
      });
    });
    return packet.length;
  } finally {
    socket.close();
  }
}
