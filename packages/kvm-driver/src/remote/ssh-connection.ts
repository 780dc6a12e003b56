// One SSH connection to a host (ssh2), opened on first use and reused by every command and
// SFTP transfer; reopened after it drops. Host keys are always checked unless the caller
// explicitly opts out.
import { readFileSync } from 'node:fs';
import { Client, type ClientChannel, type ConnectConfig, type SFTPWrapper } from 'ssh2';
import { z } from 'zod';
import { InvalidSpec, OperationAborted, OperationTimeout } from '../errors.js';
import { HostKeyMismatch, classifySshError } from './errors.js';
import { acceptableKeyTypes, checkHostKey, parseKnownHosts, type HostKeyTrust } from './host-key.js';

export const SshTargetSchema = z
  .object({
    host: z.string().min(1).max(253),
    port: z.number().int().min(1).max(65535).default(22),
    username: z.string().min(1).max(64).default('root'),
    /** Private key (OpenSSH/PEM text) or a path to it. */
    privateKey: z.string().min(1).optional(),
    privateKeyPath: z.string().regex(/^\//, 'must be an absolute path').optional(),
    passphrase: z.string().optional(),
    /** known_hosts text (lines for this host) and/or a path to such a file. */
    knownHosts: z.string().optional(),
    knownHostsPath: z.string().regex(/^\//, 'must be an absolute path').optional(),
    /** Pinned host key fingerprints ("SHA256:..."). */
    hostKeyFingerprints: z.array(z.string().regex(/^(SHA256:)?[A-Za-z0-9+/]{43}=?$/, 'SHA256 fingerprint')).optional(),
    /** Turns host key checking off. For throwaway lab hosts only. */
    insecureSkipHostKeyCheck: z.boolean().default(false),
    connectTimeoutMs: z.number().int().min(100).max(600_000).default(10_000),
    keepaliveIntervalMs: z.number().int().min(0).max(600_000).default(15_000),
    /** Channels (commands + SFTP sessions) open at once; OpenSSH's default MaxSessions is 10. */
    maxChannels: z.number().int().min(1).max(1000).default(8),
  })
  .superRefine((t, ctx) => {
    if (!t.privateKey && !t.privateKeyPath) ctx.addIssue({ code: 'custom', path: ['privateKey'], message: 'privateKey or privateKeyPath is required (key authentication only)' });
    const trusted = t.knownHosts || t.knownHostsPath || (t.hostKeyFingerprints ?? []).length > 0;
    if (!trusted && !t.insecureSkipHostKeyCheck) {
      ctx.addIssue({ code: 'custom', path: ['knownHosts'], message: 'give knownHosts, knownHostsPath or hostKeyFingerprints (or set insecureSkipHostKeyCheck)' });
    }
  });
export type SshTargetInput = z.input<typeof SshTargetSchema>;
export type SshTarget = z.output<typeof SshTargetSchema>;

export function parseSshTarget(input: unknown): SshTarget {
  const r = SshTargetSchema.safeParse(input);
  if (r.success) return r.data;
  const issues = r.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
  throw new InvalidSpec(`invalid SSH target: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues);
}

export interface ExecChannel {
  channel: ClientChannel;
}

export class SshConnection {
  readonly target: SshTarget;
  readonly description: string;
  private client: Client | undefined;
  private connecting: Promise<Client> | undefined;
  private readonly trust: HostKeyTrust | undefined;
  private readonly privateKey: string;
  private active = 0;
  private waiters: (() => void)[] = [];

  constructor(target: SshTargetInput) {
    this.target = parseSshTarget(target);
    this.description = `ssh ${this.target.username}@${this.target.host}:${this.target.port}`;
    this.privateKey = this.target.privateKey ?? readFileSync(this.target.privateKeyPath ?? '', 'utf8');
    if (!this.target.insecureSkipHostKeyCheck) {
      const text = [this.target.knownHosts ?? '', this.target.knownHostsPath ? readFileSync(this.target.knownHostsPath, 'utf8') : ''].join('\n');
      this.trust = { knownHosts: parseKnownHosts(text), fingerprints: this.target.hostKeyFingerprints ?? [] };
    }
  }

  /** The live ssh2 client, connecting (and checking the host key) first if needed. */
  connect(signal?: AbortSignal): Promise<Client> {
    if (this.client) return Promise.resolve(this.client);
    this.connecting ??= this.open(signal).finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  /** Starts a command (one shell line) on the host. */
  exec(command: string, signal?: AbortSignal): Promise<ClientChannel> {
    return this.openChannel((client, cb) => client.exec(command, cb), signal);
  }

  /** An SFTP session on the host (close it with .end() when done). */
  sftp(signal?: AbortSignal): Promise<SFTPWrapper> {
    return this.openChannel((client, cb) => client.sftp(cb), signal);
  }

  /**
   * Opens a channel once one of maxChannels is free (the server refuses more sessions than
   * its MaxSessions), reconnecting once if the connection turns out to be gone.
   */
  private async openChannel<T extends ClientChannel | SFTPWrapper>(open: (client: Client, cb: (err: Error | undefined, ch: T) => void) => void, signal?: AbortSignal): Promise<T> {
    await this.acquire(signal);
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      this.active--;
      this.waiters.shift()?.();
    };
    try {
      let ch: T;
      try {
        ch = await this.tryOpen(open, signal);
      } catch (e) {
        if (!(e instanceof Error) || !/Not connected|No response|Channel open failure|closed/i.test(e.message)) throw e;
        this.close();
        ch = await this.tryOpen(open, signal);
      }
      ch.once('close', release);
      return ch;
    } catch (e) {
      release();
      throw classifySshError(e, this.target.host, this.target.username);
    }
  }

  private async tryOpen<T>(open: (client: Client, cb: (err: Error | undefined, ch: T) => void) => void, signal?: AbortSignal): Promise<T> {
    const client = await this.connect(signal);
    return new Promise<T>((resolve, reject) => {
      try {
        open(client, (err, ch) => (err ? reject(err) : resolve(ch)));
      } catch (e) {
        reject(e as Error);
      }
    }).catch((e: unknown) => {
      throw /Not connected|No response|Channel open failure|closed/i.test(String((e as Error)?.message)) ? e : classifySshError(e, this.target.host, this.target.username);
    });
  }

  private acquire(signal?: AbortSignal): Promise<void> {
    if (this.active < this.target.maxChannels) {
      this.active++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const go = (): void => {
        signal?.removeEventListener('abort', onAbort);
        this.active++;
        resolve();
      };
      const onAbort = (): void => {
        this.waiters = this.waiters.filter((w) => w !== go);
        reject(new OperationAborted(`open a channel to ${this.description}`));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(go);
    });
  }

  close(): void {
    this.client?.end();
    this.client = undefined;
  }

  private open(signal?: AbortSignal): Promise<Client> {
    const t = this.target;
    const what = `connect to ${this.description}`;
    if (signal?.aborted) return Promise.reject(new OperationAborted(what));
    return new Promise<Client>((resolve, reject) => {
      const client = new Client();
      let mismatch: HostKeyMismatch | undefined;
      let settled = false;
      const settle = (err: Error | undefined): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (err) {
          client.end();
          reject(err);
        } else {
          this.client = client;
          resolve(client);
        }
      };
      // ssh2's readyTimeout covers the handshake only; this covers TCP connect + auth too.
      const timer = setTimeout(() => settle(new OperationTimeout(what, t.connectTimeoutMs)), t.connectTimeoutMs + 1000);
      const onAbort = (): void => settle(new OperationAborted(what));
      signal?.addEventListener('abort', onAbort, { once: true });

      const config: ConnectConfig = {
        host: t.host,
        port: t.port,
        username: t.username,
        privateKey: this.privateKey,
        ...(t.passphrase ? { passphrase: t.passphrase } : {}),
        readyTimeout: t.connectTimeoutMs,
        keepaliveInterval: t.keepaliveIntervalMs,
        keepaliveCountMax: 3,
      };
      const trust = this.trust;
      if (trust) {
        const types = acceptableKeyTypes(trust, t.host, t.port);
        if (types) config.algorithms = { serverHostKey: types as NonNullable<NonNullable<ConnectConfig['algorithms']>['serverHostKey']> };
        config.hostVerifier = (key: Buffer): boolean => {
          const verdict = checkHostKey(trust, t.host, t.port, key);
          if (!verdict.ok) mismatch = new HostKeyMismatch(t.host, verdict.presented, verdict.expected);
          return verdict.ok;
        };
      }
      client.on('ready', () => settle(undefined));
      client.on('error', (err) => {
        if (!settled) return settle(mismatch ?? classifySshError(err, t.host, t.username));
        // After the handshake an error means the connection is gone; the next call reconnects.
        if (this.client === client) this.client = undefined;
      });
      client.on('close', () => {
        if (this.client === client) this.client = undefined;
        settle(mismatch ?? classifySshError(new Error('connection closed during handshake'), t.host, t.username));
      });
      client.connect(config);
    });
  }
}
