import { promises as fs } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { DEFAULT_HEARTBEAT_INTERVAL_SECONDS } from '@deskpool/protocol';

const presenceSourceSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('evdev'), procDevicesPath: z.string().optional(), devInputDir: z.string().optional() }).strict(),
  z.object({ kind: z.literal('logind'), sessionId: z.string().optional(), pollSeconds: z.number().positive().default(10) }).strict(),
  z.object({ kind: z.literal('fifo'), path: z.string().min(1) }).strict(),
  z.object({ kind: z.literal('trace'), path: z.string().min(1) }).strict(),
]);
export type PresenceSourceConfig = z.infer<typeof presenceSourceSchema>;

const driverSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('libvirt'), uri: z.string().min(1).default('qemu:///system') }).strict(),
  z.object({ kind: z.literal('simulated') }).strict(),
]);

export const agentConfigSchema = z
  .object({
    /** Base URL of the control plane, e.g. https://deskpool.example.org */
    serverUrl: z.url({ protocol: /^https?$/ }),
    stateDir: z.string().min(1).default('/var/lib/deskpool-agent'),
    /** Seconds without input before the PC counts as idle; unset = the pool's rule from enrollment. */
    idleThresholdSeconds: z.number().positive().optional(),
    presenceSources: z.array(presenceSourceSchema).min(1).default([{ kind: 'evdev' }, { kind: 'logind', pollSeconds: 10 }]),
    driver: driverSchema.default({ kind: 'libvirt', uri: 'qemu:///system' }),
    heartbeatIntervalSeconds: z.number().positive().max(3600).default(DEFAULT_HEARTBEAT_INTERVAL_SECONDS),
    /** PEM file of a CA to trust for https/wss (a private control-plane CA). */
    caFile: z.string().min(1).optional(),
    /** Local unix socket for `deskpool-agent signin`; defaults to <stateDir>/agent.sock. */
    socketPath: z.string().min(1).optional(),
    /** Events kept while disconnected before the oldest are summarized. */
    outboxCapacity: z.number().int().min(2).max(1_000_000).default(10_000),
    reconnectInitialMs: z.number().int().positive().default(500),
    reconnectMaxMs: z.number().int().positive().default(60_000),
    /** Time runs this many times faster (simulator and tests only). */
    clockSpeed: z.number().positive().default(1),
    /** How often to re-read inventory and domain states and report changes. */
    inventoryIntervalSeconds: z.number().positive().default(300),
    domainPollSeconds: z.number().positive().default(15),
    /** How often running batch VMs are looked at for console output and their end (events come sooner). */
    batchPollSeconds: z.number().positive().default(2),
    /**
     * Where VM serial consoles are logged (default /var/lib/deskpool/consoles). Keep it the same
     * on every PC: a batch VM resumed elsewhere writes its console at the path it was defined with.
     */
    consoleDir: z.string().regex(/^\//, 'must be an absolute path').optional(),
    /**
     * Where other PCs live-migrate desktops to this one: a libvirt URI reachable from them
     * (e.g. qemu+ssh://root@10.0.0.7/system) and, when its hostname does not resolve, the data
     * channel (tcp://10.0.0.7). Advertised in the inventory; without it no desktop moves here live.
     */
    migration: z
      .object({ uri: z.string().min(1).max(1024), dataUri: z.string().min(1).max(1024).optional() })
      .strict()
      .optional(),
    /** SSH identity for move-state (saved VM state sent to another PC over SFTP). */
    stateMover: z
      .object({
        username: z.string().min(1).default('root'),
        port: z.number().int().min(1).max(65535).default(22),
        privateKeyPath: z.string().regex(/^\//, 'must be an absolute path'),
        knownHostsPath: z.string().regex(/^\//, 'must be an absolute path').optional(),
        /** Lab machines only: accept any host key. */
        insecureSkipHostKeyCheck: z.boolean().default(false),
      })
      .strict()
      .optional(),
  })
  .strict();
export type AgentConfig = z.infer<typeof agentConfigSchema>;

export class ConfigInvalid extends Error {
  constructor(
    readonly source: string,
    readonly issues: { path: string; message: string }[],
  ) {
    super(`agent configuration is invalid (${source}): ${issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ')}`);
  }
}

/** Environment variables the agent reads, each mapped to a config key. */
const ENV_KEYS: Record<string, { key: keyof AgentConfig; json?: boolean; number?: boolean }> = {
  DESKPOOL_SERVER_URL: { key: 'serverUrl' },
  DESKPOOL_AGENT_STATE_DIR: { key: 'stateDir' },
  DESKPOOL_AGENT_IDLE_THRESHOLD_SECONDS: { key: 'idleThresholdSeconds', number: true },
  DESKPOOL_AGENT_PRESENCE_SOURCES: { key: 'presenceSources', json: true },
  DESKPOOL_AGENT_DRIVER: { key: 'driver', json: true },
  DESKPOOL_AGENT_HEARTBEAT_SECONDS: { key: 'heartbeatIntervalSeconds', number: true },
  DESKPOOL_AGENT_CA_FILE: { key: 'caFile' },
  DESKPOOL_AGENT_SOCKET: { key: 'socketPath' },
  DESKPOOL_AGENT_CLOCK_SPEED: { key: 'clockSpeed', number: true },
  DESKPOOL_AGENT_OUTBOX_CAPACITY: { key: 'outboxCapacity', number: true },
  DESKPOOL_AGENT_RECONNECT_INITIAL_MS: { key: 'reconnectInitialMs', number: true },
  DESKPOOL_AGENT_RECONNECT_MAX_MS: { key: 'reconnectMaxMs', number: true },
  DESKPOOL_AGENT_DOMAIN_POLL_SECONDS: { key: 'domainPollSeconds', number: true },
  DESKPOOL_AGENT_STATE_MOVER: { key: 'stateMover', json: true },
  DESKPOOL_AGENT_CONSOLE_DIR: { key: 'consoleDir' },
  DESKPOOL_AGENT_BATCH_POLL_SECONDS: { key: 'batchPollSeconds', number: true },
  DESKPOOL_AGENT_MIGRATION: { key: 'migration', json: true },
};

export function configFromEnv(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(ENV_KEYS)) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    if (spec.json) {
      try {
        out[spec.key] = JSON.parse(raw);
      } catch {
        throw new ConfigInvalid(`env ${name}`, [{ path: spec.key, message: 'not valid JSON' }]);
      }
    } else out[spec.key] = spec.number ? Number(raw) : raw;
  }
  return out;
}

/**
 * Config file, then environment, then flags; each later layer overrides keys of the earlier.
 * The result is validated as a whole, and errors name the offending key.
 */
export async function loadConfig(options: { file?: string; env?: NodeJS.ProcessEnv; flags?: Record<string, unknown> }): Promise<AgentConfig> {
  let fromFile: Record<string, unknown> = {};
  if (options.file) {
    let text: string;
    try {
      text = await fs.readFile(options.file, 'utf8');
    } catch (err) {
      throw new ConfigInvalid(options.file, [{ path: '', message: `cannot read: ${(err as Error).message}` }]);
    }
    try {
      fromFile = JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw new ConfigInvalid(options.file, [{ path: '', message: 'not valid JSON' }]);
    }
  }
  const merged = { ...fromFile, ...configFromEnv(options.env ?? {}), ...stripUndefined(options.flags ?? {}) };
  const parsed = agentConfigSchema.safeParse(merged);
  if (!parsed.success) {
    throw new ConfigInvalid(options.file ?? 'env and flags', parsed.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message })));
  }
  return parsed.data;
}

function stripUndefined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

export function socketPathOf(config: Pick<AgentConfig, 'socketPath' | 'stateDir'>): string {
  return config.socketPath ?? path.join(config.stateDir, 'agent.sock');
}

/** ws(s)://host/api/v1/agent/ws from the server's http(s) base URL. */
export function channelUrlOf(serverUrl: string): string {
  const url = new URL('/api/v1/agent/ws', serverUrl);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return url.toString();
}

export const DEFAULT_IDLE_THRESHOLD_SECONDS = 15 * 60;
