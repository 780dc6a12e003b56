// The simulated hypervisors live in one "office" process that is never killed, like the PCs'
// libvirt daemons outlive a crashed agent. Agents in the fleet processes reach their PC's
// hypervisor over a Unix socket: one JSON line per call, one per answer.
import { createConnection, type Socket } from 'node:net';
import { HypervisorError, type HypervisorDriver, type HypervisorErrorCode, type Progress } from '@deskpool/kvm-driver';

export interface RpcRequest {
  id: number;
  pc: number;
  method: string;
  args: unknown[];
}

export type RpcAnswer =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: { code: string; message: string; hint?: string; hypervisor: boolean } }
  | { id: number; progress: Progress };

/** Marks an options argument whose onProgress callback wants progress messages. */
export const PROGRESS_FLAG = '__progress';

/** Options are sent without callbacks and signals; progress comes back as messages. */
export function encodeArgs(args: unknown[]): { args: unknown[]; onProgress: ((p: Progress) => void) | undefined } {
  let onProgress: ((p: Progress) => void) | undefined;
  const out = args.map((a) => {
    if (a === null || typeof a !== 'object' || Array.isArray(a)) return a;
    const copy: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(a as Record<string, unknown>)) {
      if (k === 'onProgress' && typeof v === 'function') {
        onProgress = v as (p: Progress) => void;
        copy[PROGRESS_FLAG] = true;
      } else if (typeof v !== 'function' && !(v instanceof AbortSignal)) copy[k] = v;
    }
    return copy;
  });
  return { args: out, onProgress };
}

/** A hypervisor error that crossed the socket: same code, message and hint. */
export class RemoteHypervisorError extends HypervisorError {
  constructor(
    readonly code: HypervisorErrorCode,
    message: string,
    hint: string,
  ) {
    super(message, hint);
  }
}

export class OfficeUnreachable extends Error {
  constructor(socketPath: string, cause?: unknown) {
    super(`the office process (simulated hypervisors) at ${socketPath} is not reachable; the chaos run is broken, not the agent`, { cause });
    this.name = 'OfficeUnreachable';
  }
}

export class OfficeClient {
  private socket: Socket | null = null;
  private nextId = 1;
  private buffer = '';
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; onProgress: ((p: Progress) => void) | undefined }>();

  constructor(private readonly socketPath: string) {}

  async connect(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const socket = createConnection(this.socketPath, () => resolve());
      socket.once('error', reject);
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => this.onData(chunk));
      socket.on('close', () => {
        for (const p of this.pending.values()) p.reject(new OfficeUnreachable(this.socketPath));
        this.pending.clear();
      });
      this.socket = socket;
    });
  }

  call(pc: number, method: string, rawArgs: unknown[]): Promise<unknown> {
    const socket = this.socket;
    if (!socket || socket.destroyed) return Promise.reject(new OfficeUnreachable(this.socketPath));
    const id = this.nextId++;
    const { args, onProgress } = encodeArgs(rawArgs);
    const request: RpcRequest = { id, pc, method, args };
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onProgress });
      socket.write(`${JSON.stringify(request)}\n`);
    });
  }

  close(): void {
    this.socket?.destroy();
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + 1);
      const answer = JSON.parse(line) as RpcAnswer;
      const waiting = this.pending.get(answer.id);
      if (!waiting) continue;
      if ('progress' in answer) {
        waiting.onProgress?.(answer.progress);
        continue;
      }
      this.pending.delete(answer.id);
      if (answer.ok) waiting.resolve(answer.value);
      else if (answer.error.hypervisor) waiting.reject(new RemoteHypervisorError(answer.error.code as HypervisorErrorCode, answer.error.message, answer.error.hint ?? ''));
      else waiting.reject(new Error(answer.error.message));
    }
  }
}

/** The HypervisorDriver an agent in a fleet process uses: every call runs in the office. */
export function remoteDriver(client: OfficeClient, pc: number, hostname: string): HypervisorDriver {
  const target = { description: `simulated PC ${hostname} (office process)` };
  return new Proxy(target, {
    get(t, prop) {
      if (prop === 'description') return t.description;
      if (prop === 'events') {
        return () => {
          throw new Error('domain events are not carried to the fleet processes; the agent polls list()');
        };
      }
      if (typeof prop !== 'string' || prop === 'then') return undefined;
      return (...args: unknown[]) => client.call(pc, prop, args);
    },
  }) as unknown as HypervisorDriver;
}
