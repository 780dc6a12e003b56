import { randomUUID } from 'node:crypto';
import websocket from '@fastify/websocket';
import { recordAudit, type PrismaClient } from '@deskpool/db';
import {
  AGENT_PROTOCOL_VERSION,
  DEFAULT_HEARTBEAT_INTERVAL_SECONDS,
  MAX_AGENT_FRAME_BYTES,
  decodeUpFrame,
  encodeFrame,
  enrollRequestSchema,
  errorFrame,
  type CommandFrame,
  type CommandFrameInput,
  type DownFrame,
  type ErrorFrame,
} from '@deskpool/protocol';
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import type { WebSocket } from 'ws';
import { systemClock, type Clock } from '../clock.js';
import { authenticateHost, enrollHost, type AuthenticatedHost } from './enroll.js';
import { AgentHttpError } from './errors.js';
import { HeartbeatWriter } from './heartbeats.js';
import { ConnectionRecorder } from './connections.js';
import { applyUpFrame, type AgentEventSink } from './frames.js';
import type { TaskOutputSink } from './task-output.js';
import { AgentRegistry, DEFAULT_AGENT_CHANNEL_PREFIX, type AgentConnection } from './registry.js';

export interface AgentGatewayOptions {
  prisma: PrismaClient;
  redis: Redis;
  clock?: Clock;
  /** Prefix of the per-host command channels (`<prefix><hostId>`); tests use their own. */
  channelPrefix?: string;
  /** Prefix of the gateway's other Redis keys (domain states, event stream). */
  keyPrefix?: string;
  heartbeatIntervalSeconds?: number;
  /** An agent must say hello within this long after connecting. */
  helloTimeoutMs?: number;
  /** Presence, sign-ins and op results for the scheduler (its SchedulerEvents). */
  events?: AgentEventSink;
  /** Where batch tasks' console output and results are stored (job logs); discarded by default. */
  taskOutput?: TaskOutputSink;
}

export interface AgentGateway {
  /** Register under /api/v1/agent (AppDeps.agentRoutes). */
  plugin: FastifyPluginAsync;
  registry: AgentRegistry;
  /** Send a command to a host's agent, wherever its socket is. */
  sendCommand(hostId: string, command: CommandFrameInput): Promise<'local' | 'published'>;
  close(): Promise<void>;
}

/** Deletes the owner key only if it still names this connection (atomic compare-and-delete). */
const RELEASE_OWNER = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

/** Redis channel name scheduler workers publish commands on (same as AgentRegistry uses). */
export { hostChannel } from './registry.js';

/**
 * The agent endpoint: enrollment and the agents' WebSocket channel. Agents authenticate with
 * enrollment tokens and host credentials, never API tokens.
 */
export function createAgentGateway(options: AgentGatewayOptions): AgentGateway {
  const { prisma, redis } = options;
  const clock = options.clock ?? systemClock;
  const keyPrefix = options.keyPrefix ?? 'deskpool:agentgw:';
  const heartbeatIntervalSeconds = options.heartbeatIntervalSeconds ?? DEFAULT_HEARTBEAT_INTERVAL_SECONDS;
  const registry = new AgentRegistry(redis, options.channelPrefix ?? DEFAULT_AGENT_CHANNEL_PREFIX);
  registry.onDelivered = (_hostId, command) => {
    void prisma.operation
      .updateMany({ where: { idempotencyKey: command.idempotencyKey, status: 'pending' }, data: { status: 'sent', sentAt: clock.now() } })
      .catch(() => undefined);
  };
  let started: Promise<void> | undefined;
  const heartbeats = new HeartbeatWriter(prisma, clock);
  const connections = new ConnectionRecorder(prisma, clock);

  const plugin: FastifyPluginAsync = async (app: FastifyInstance) => {
    started ??= registry.start();
    await started;
    app.addHook('onClose', async () => {
      await heartbeats.close();
      await connections.close();
      await registry.stop();
    });
    // Frames up to 4x the protocol limit are read and answered with FRAME_TOO_LARGE; beyond that
    // ws closes the connection (1009) without buffering the whole thing.
    await app.register(websocket, { options: { maxPayload: MAX_AGENT_FRAME_BYTES * 4 } });

    app.post('/enroll', async (request: FastifyRequest, reply: FastifyReply) => {
      const parsed = enrollRequestSchema.safeParse(request.body);
      if (!parsed.success) {
        const issues = parsed.error.issues.map((i) => ({ location: 'body', path: i.path.map((p) => (typeof p === 'number' ? p : String(p))), message: i.message }));
        return reply.status(400).send({ error: { code: 'VALIDATION_FAILED', message: issues.map((i) => `body.${i.path.join('.')}: ${i.message}`).join('; '), details: { issues } } });
      }
      try {
        const result = await enrollHost(prisma, clock, parsed.data, `agent:POST /api/v1/agent/enroll (${request.id})`);
        return reply.status(201).send(result);
      } catch (err) {
        if (err instanceof AgentHttpError) return reply.status(err.statusCode).send(err.toBody());
        throw err;
      }
    });

    app.get(
      '/ws',
      {
        websocket: true,
        preValidation: async (request: FastifyRequest, reply: FastifyReply) => {
          try {
            (request as FastifyRequest & { agentHost?: AuthenticatedHost }).agentHost = await authenticateHost(prisma, request.headers.authorization);
          } catch (err) {
            if (err instanceof AgentHttpError) return reply.status(err.statusCode).send(err.toBody());
            throw err;
          }
        },
      },
      (socket: WebSocket, request: FastifyRequest) => {
        const host = (request as FastifyRequest & { agentHost?: AuthenticatedHost }).agentHost;
        if (!host) {
          socket.close(1008, 'unauthenticated');
          return;
        }
        serveAgent(socket, host, request);
      },
    );
  };

  function serveAgent(socket: WebSocket, host: AuthenticatedHost, request: FastifyRequest): void {
    const log = request.log.child({ hostId: host.hostId });
    const ctx = { prisma, redis, clock, hostId: host.hostId, hostName: host.hostName, credentialId: host.credentialId, heartbeats, keyPrefix, ...(options.events ? { events: options.events } : {}), ...(options.taskOutput ? { taskOutput: options.taskOutput } : {}) };
    const actor = `agent:${host.hostName}`;
    const ownerKey = `${keyPrefix}owner:${host.hostId}`;
    let greeted = false;
    let closed = false;
    // Frames are applied strictly in arrival order: presence after presence, result after progress.
    let chain: Promise<void> = Promise.resolve();

    const send = (frame: DownFrame): void => {
      if (socket.readyState === socket.OPEN) socket.send(encodeFrame(frame));
    };
    const fail = (frame: ErrorFrame): void => {
      send(frame);
      if (frame.fatal) socket.close(1008, frame.code);
    };
    const connection: AgentConnection = {
      hostId: host.hostId,
      connectionId: randomUUID(),
      send: (command: CommandFrame) => send(command),
      replaced: () => {
        send(errorFrame('INTERNAL', 'a newer connection for this host replaced this one'));
        socket.close(4000, 'replaced by a newer connection');
      },
    };

    const helloTimer = setTimeout(() => {
      if (!greeted) fail(errorFrame('HELLO_REQUIRED', 'no hello frame within the allowed time', { fatal: true }));
    }, options.helloTimeoutMs ?? 10_000);

    const onHello = async (): Promise<void> => {
      greeted = true;
      clearTimeout(helloTimer);
      // This connection now owns the host's online state: a late close of an older connection
      // (here or in another API process) must not mark the host offline.
      await redis.set(ownerKey, connection.connectionId);
      await registry.register(connection);
      send({ type: 'hello', protocolVersion: AGENT_PROTOCOL_VERSION, hostId: host.hostId, heartbeatIntervalSeconds });
      // Online + audit, then the commands it missed: batched with other agents greeting now.
      for (const command of await connections.connected(host.hostId, actor, `agent-ws:${request.id}`)) registry.sendCommand(host.hostId, command).catch(() => undefined);
    };

    const handle = async (data: Buffer | ArrayBuffer | Buffer[]): Promise<void> => {
      if (closed) return;
      const decoded = decodeUpFrame(data);
      if (!decoded.ok) {
        log.warn({ code: decoded.error.code }, decoded.error.message);
        fail(decoded.error);
        return;
      }
      const frame = decoded.frame;
      if (frame.type === 'hello') {
        if (greeted) return fail(errorFrame('MALFORMED_FRAME', 'hello was already exchanged on this connection'));
        return onHello();
      }
      if (!greeted) return fail(errorFrame('HELLO_REQUIRED', `send a hello frame (protocol version ${AGENT_PROTOCOL_VERSION}) before ${frame.type}`, 'seq' in frame ? { refSeq: frame.seq } : {}));
      if (frame.type === 'error') {
        log.warn({ code: frame.code }, `agent reported: ${frame.message}`);
        return;
      }
      // A revoked host is cut off at its next heartbeat (applyUpFrame answers a fatal error).
      const problem = await applyUpFrame(ctx, frame);
      if (problem) fail(problem);
      else send({ type: 'ack', seq: frame.seq });
    };

    socket.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => {
      chain = chain
        .then(() => handle(data))
        .catch(async (err: unknown) => {
          // The host may have been removed (its credential revoked and deleted) while this frame
          // was being applied: that is a revocation, not trouble, and the agent must hear it as one.
          if (await credentialGone(prisma, host.credentialId)) {
            fail(errorFrame('CREDENTIAL_REVOKED', "this host's credential was revoked (or the host removed); enroll again with a new token if the PC should rejoin", { fatal: true }));
            return;
          }
          // Infrastructure trouble (database down): tell the agent, which keeps the frame and re-sends it.
          log.error({ err }, 'agent frame failed');
          send(errorFrame('INTERNAL', 'the control plane could not record this frame; it stays in your outbox and is re-sent after a reconnect'));
          socket.close(1011, 'internal error');
        });
    });
    socket.on('error', (err) => log.warn({ err }, 'agent socket error'));
    socket.on('close', () => {
      closed = true;
      clearTimeout(helloTimer);
      registry.unregister(connection);
      if (!greeted) return;
      void chain.then(async () => {
        const wasOwner = (await redis.eval(RELEASE_OWNER, 1, ownerKey, connection.connectionId)) === 1;
        if (!wasOwner) return;
        await prisma.$transaction(async (tx) => {
          await tx.host.updateMany({ where: { id: host.hostId }, data: { onlineState: 'offline' } });
          await recordAudit(tx, { entityType: 'host', entityId: host.hostId, action: 'agent.disconnected', actor, cause: `agent-ws:${request.id}` });
        });
      }).catch((err: unknown) => log.error({ err }, 'could not mark host offline'));
    });
  }

  return {
    plugin,
    registry,
    sendCommand: (hostId, command) => registry.sendCommand(hostId, command),
    close: () => registry.stop(),
  };
}

/** True when the credential no longer admits its host (revoked, or deleted with the host). */
async function credentialGone(prisma: PrismaClient, credentialId: string): Promise<boolean> {
  try {
    const row = await prisma.hostCredential.findUnique({ where: { id: credentialId }, select: { revokedAt: true } });
    return row === null || row.revokedAt !== null;
  } catch {
    return false; // the database itself is unreachable: not a revocation
  }
}
