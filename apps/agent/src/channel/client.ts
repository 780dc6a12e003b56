import WebSocket from 'ws';
import {
  AGENT_PROTOCOL_VERSION,
  MAX_AGENT_FRAME_BYTES,
  decodeDownFrame,
  encodeFrame,
  errorFrame,
  type CommandFrame,
  type ErrorFrame,
  type ServerHelloFrame,
  type UpFrame,
} from '@deskpool/protocol';
import type { Clock, TimerHandle } from '../clock.js';
import { reconnectDelay, type BackoffPolicy } from './backoff.js';
import type { Outbox, OutgoingEvent } from './outbox.js';

/** The control plane said this agent may not connect; reconnecting will not help. */
export class AgentRejected extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface ChannelOptions {
  /** ws:// or wss:// URL of /api/v1/agent/ws. */
  url: string;
  credential: string;
  /** Extra CA certificate(s) to trust for wss://. */
  ca?: Buffer;
  agentVersion: string;
  backoff: BackoffPolicy;
  outbox: Outbox;
  clock: Clock;
  onCommand(frame: CommandFrame): void;
  /** A command frame that could not be read; the channel already answered with an error frame. */
  onConnected(hello: ServerHelloFrame): void;
  onRejected(error: AgentRejected): void;
  log(message: string): void;
}

const FATAL_CODES = new Set(['CREDENTIAL_REVOKED', 'UNAUTHORIZED', 'UNSUPPORTED_VERSION']);

/**
 * The agent's single outbound connection. Reconnects with jittered exponential backoff; frames
 * stay in the outbox until acknowledged and are re-sent in order after a reconnect.
 */
export class AgentChannel {
  private socket: WebSocket | undefined;
  private ready = false;
  private attempt = 0;
  private reconnectTimer: TimerHandle | undefined;
  private stopped = false;
  private alive = true;

  constructor(private readonly options: ChannelOptions) {}

  get connected(): boolean {
    return this.ready;
  }

  start(): void {
    this.connect();
  }

  /** Queues an event and sends it now if connected. */
  send(event: OutgoingEvent): void {
    const frame = this.options.outbox.enqueue(event);
    if (this.ready) this.write(frame);
  }

  /** Liveness: called every heartbeat; a connection that missed a whole interval is dropped. */
  checkAlive(): void {
    const socket = this.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    if (!this.alive) {
      this.options.log('no pong from the API within a heartbeat interval; reconnecting');
      socket.terminate();
      return;
    }
    this.alive = false;
    socket.ping();
  }

  private write(frame: UpFrame): void {
    const socket = this.socket;
    if (socket?.readyState === WebSocket.OPEN) socket.send(encodeFrame(frame));
  }

  private connect(): void {
    if (this.stopped) return;
    const { url, credential, ca } = this.options;
    const socket = new WebSocket(url, {
      headers: { authorization: `Bearer ${credential}` },
      // Oversized frames up to 4x the limit are read and answered with FRAME_TOO_LARGE.
      maxPayload: MAX_AGENT_FRAME_BYTES * 4,
      handshakeTimeout: 10_000,
      ...(ca ? { ca } : {}),
    });
    this.socket = socket;
    this.alive = true;
    socket.on('open', () => {
      this.write({ type: 'hello', protocolVersion: AGENT_PROTOCOL_VERSION, agentVersion: this.options.agentVersion });
    });
    socket.on('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk.slice(0, 4096)));
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        let code = `HTTP_${status}`;
        let message = `the API refused the connection with HTTP ${status}`;
        try {
          const parsed = JSON.parse(body) as { error?: { code?: string; message?: string } };
          code = parsed.error?.code ?? code;
          message = parsed.error?.message ?? message;
        } catch {
          /* not JSON: keep the status line */
        }
        socket.terminate();
        if (status === 401 || status === 403) this.reject(new AgentRejected(code, message));
        else this.scheduleReconnect(message);
      });
      res.on('error', () => socket.terminate());
    });
    socket.on('pong', () => (this.alive = true));
    socket.on('message', (data: WebSocket.RawData) => this.onMessage(socket, data));
    socket.on('error', (err) => this.options.log(`channel error: ${err.message}`));
    socket.on('close', () => {
      if (this.socket !== socket) return;
      this.ready = false;
      this.scheduleReconnect('connection closed');
    });
  }

  private onMessage(socket: WebSocket, data: WebSocket.RawData): void {
    const decoded = decodeDownFrame(data as Buffer | Buffer[] | ArrayBuffer);
    if (!decoded.ok) {
      this.options.log(`bad frame from the API: ${decoded.error.message}`);
      this.write(decoded.error);
      if (decoded.error.fatal) socket.close(1002, decoded.error.code);
      // An API speaking another protocol version stays that way until someone upgrades one side.
      if (decoded.error.code === 'UNSUPPORTED_VERSION') this.reject(new AgentRejected(decoded.error.code, decoded.error.message));
      return;
    }
    const frame = decoded.frame;
    switch (frame.type) {
      case 'hello':
        this.ready = true;
        this.attempt = 0;
        for (const pending of this.options.outbox.unacknowledged()) this.write(pending);
        this.options.onConnected(frame);
        return;
      case 'ack':
        this.options.outbox.acknowledge(frame.seq);
        return;
      case 'command':
        if (!this.ready) {
          this.write(errorFrame('HELLO_REQUIRED', 'command received before the hello exchange', { refIdempotencyKey: frame.idempotencyKey }));
          return;
        }
        this.options.onCommand(frame);
        return;
      case 'error':
        this.onError(frame);
        return;
    }
  }

  private onError(frame: ErrorFrame): void {
    this.options.log(`API error ${frame.code}: ${frame.message}`);
    // The API will never take a report about another host's work; sending it again cannot help.
    if (frame.code === 'NOT_YOUR_HOST' && frame.refSeq !== undefined) this.options.outbox.acknowledge(frame.refSeq);
    if (frame.fatal && FATAL_CODES.has(frame.code)) this.reject(new AgentRejected(frame.code, frame.message));
  }

  private reject(error: AgentRejected): void {
    this.stop();
    this.options.onRejected(error);
  }

  private scheduleReconnect(reason: string): void {
    if (this.stopped || this.reconnectTimer) return;
    const delay = reconnectDelay(this.attempt++, this.options.backoff);
    this.options.log(`disconnected (${reason}); reconnecting in ${delay} ms`);
    this.reconnectTimer = this.options.clock.setTimeout(() => {
      this.reconnectTimer = undefined;
      this.connect();
    }, delay);
  }

  stop(): void {
    this.stopped = true;
    this.ready = false;
    if (this.reconnectTimer) this.options.clock.clearTimeout(this.reconnectTimer);
    this.socket?.close(1000, 'agent stopping');
  }
}
