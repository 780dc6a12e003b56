import type { z } from 'zod';
import { AGENT_COMMAND_KINDS, commandFrameSchema } from './commands.js';
import {
  ackFrameSchema,
  agentHelloFrameSchema,
  domainStateFrameSchema,
  errorFrameSchema,
  eventsDroppedFrameSchema,
  heartbeatFrameSchema,
  inventoryFrameSchema,
  opProgressFrameSchema,
  opResultFrameSchema,
  presenceFrameSchema,
  serverHelloFrameSchema,
  signinFrameSchema,
  taskFinishedFrameSchema,
  taskOutputFrameSchema,
  type AgentErrorCode,
  type DownFrame,
  type ErrorFrame,
  type UpFrame,
} from './frames.js';
import { AGENT_PROTOCOL_VERSION, isSupportedAgentProtocolVersion, MAX_AGENT_FRAME_BYTES, SUPPORTED_AGENT_PROTOCOL_VERSIONS } from './version.js';

export type DecodeResult<F> = { ok: true; frame: F } | { ok: false; error: ErrorFrame };

/** Raw WebSocket payloads as `ws` hands them over. */
export type RawFrame = string | Buffer | ArrayBuffer | Buffer[];

const upSchemas: Record<string, z.ZodType> = {
  hello: agentHelloFrameSchema,
  heartbeat: heartbeatFrameSchema,
  presence: presenceFrameSchema,
  signin: signinFrameSchema,
  inventory: inventoryFrameSchema,
  'domain-state': domainStateFrameSchema,
  'op-progress': opProgressFrameSchema,
  'op-result': opResultFrameSchema,
  'events-dropped': eventsDroppedFrameSchema,
  'task-output': taskOutputFrameSchema,
  'task-finished': taskFinishedFrameSchema,
  error: errorFrameSchema,
};

const downSchemas: Record<string, z.ZodType> = {
  hello: serverHelloFrameSchema,
  command: commandFrameSchema,
  ack: ackFrameSchema,
  error: errorFrameSchema,
};

export function errorFrame(code: AgentErrorCode, message: string, extra: Partial<Omit<ErrorFrame, 'type' | 'code' | 'message'>> = {}): ErrorFrame {
  return { type: 'error', code, message, fatal: false, ...extra };
}

function toText(raw: RawFrame): { text: string; bytes: number } {
  if (typeof raw === 'string') return { text: raw, bytes: Buffer.byteLength(raw, 'utf8') };
  const buf = Array.isArray(raw) ? Buffer.concat(raw) : Buffer.isBuffer(raw) ? raw : Buffer.from(raw);
  return { text: buf.toString('utf8'), bytes: buf.length };
}

/**
 * Where the first character PostgreSQL cannot store is, in a string or an object key; null when there is none.
 * Iterative, with paths kept as parent links (built only for the answer), so neither deep
 * nesting nor its length can overflow the stack or cost more than one visit per value.
 */
interface PathLink {
  key: string;
  parent: PathLink | null;
}
function pathOf(link: PathLink | null): string[] {
  const out: string[] = [];
  for (let l = link; l; l = l.parent) out.push(l.key);
  return out.reverse();
}
/** NUL, or half of a UTF-16 surrogate pair: PostgreSQL stores neither in text or jsonb. */
const LONE_SURROGATE = /\p{Cs}/u;
function unstorableKind(s: string): 'nul' | 'surrogate' | null {
  if (s.includes('\u0000')) return 'nul';
  return LONE_SURROGATE.test(s) ? 'surrogate' : null;
}
function unstorablePath(value: unknown): { path: string[]; kind: 'nul' | 'surrogate' } | null {
  const stack: [unknown, PathLink | null][] = [[value, null]];
  while (stack.length > 0) {
    const [v, at] = stack.pop()!;
    if (typeof v === 'string') {
      const kind = unstorableKind(v);
      if (kind) return { path: pathOf(at), kind };
    } else if (typeof v === 'object' && v !== null) {
      for (const [k, child] of Object.entries(v)) {
        const kind = unstorableKind(k);
        if (kind) return { path: pathOf({ key: k.replaceAll('\u0000', '\\u0000').replace(/\p{Cs}/gu, '\\uFFFD'), parent: at }), kind };
        stack.push([child, { key: k, parent: at }]);
      }
    }
  }
  return null;
}

function issuesOf(error: z.ZodError): { path: string; message: string }[] {
  return error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message }));
}

function decode(raw: RawFrame, schemas: Record<string, z.ZodType>, direction: 'up' | 'down'): DecodeResult<unknown> {
  const { text, bytes } = toText(raw);
  if (bytes > MAX_AGENT_FRAME_BYTES) {
    return { ok: false, error: errorFrame('FRAME_TOO_LARGE', `frame is ${bytes} bytes; the limit is ${MAX_AGENT_FRAME_BYTES}`) };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, error: errorFrame('MALFORMED_FRAME', 'frame is not valid JSON') };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value) || typeof (value as { type?: unknown }).type !== 'string') {
    return { ok: false, error: errorFrame('MALFORMED_FRAME', 'frame must be a JSON object with a string "type"', { details: { issues: [{ path: 'type', message: 'required' }] } }) };
  }
  const record = value as Record<string, unknown>;
  const type = record.type as string;
  const refSeq = typeof record.seq === 'number' && Number.isInteger(record.seq) ? record.seq : undefined;
  const refIdempotencyKey = typeof record.idempotencyKey === 'string' ? record.idempotencyKey.slice(0, 128) : undefined;
  const ref = { ...(refSeq !== undefined ? { refSeq } : {}), ...(refIdempotencyKey !== undefined ? { refIdempotencyKey } : {}) };
  const bad = unstorablePath(value);
  if (bad) {
    // Neither end can store it (PostgreSQL refuses U+0000 and lone surrogates in text and jsonb): refused here, by field.
    const joined = bad.path.join('.');
    const where = joined === '' ? '(root)' : joined.length > 200 ? `${joined.slice(0, 200)}…` : joined;
    const [what, issue] = bad.kind === 'nul' ? ['the NUL character (\\u0000)', 'contains U+0000'] : ['half of a UTF-16 surrogate pair (invalid Unicode)', 'contains a lone surrogate'];
    return { ok: false, error: errorFrame('MALFORMED_FRAME', `${where}: strings must not contain ${what}`, { ...ref, details: { issues: [{ path: where, message: issue }] } }) };
  }
  const schema = Object.hasOwn(schemas, type) ? schemas[type] : undefined;
  if (!schema) {
    return {
      ok: false,
      error: errorFrame('UNKNOWN_FRAME_TYPE', `unknown ${direction}-frame type "${type.slice(0, 64)}"; expected one of ${Object.keys(schemas).join(', ')}`, ref),
    };
  }
  if (type === 'hello' && typeof record.protocolVersion === 'number' && !isSupportedAgentProtocolVersion(record.protocolVersion)) {
    return {
      ok: false,
      error: errorFrame(
        'UNSUPPORTED_VERSION',
        `protocol version ${record.protocolVersion} is not supported; this end speaks ${SUPPORTED_AGENT_PROTOCOL_VERSIONS.join(', ')}. Upgrade the older side.`,
        { fatal: true, details: { supported: SUPPORTED_AGENT_PROTOCOL_VERSIONS, current: AGENT_PROTOCOL_VERSION } },
      ),
    };
  }
  if (type === 'command' && !(AGENT_COMMAND_KINDS as readonly unknown[]).includes(record.kind)) {
    return {
      ok: false,
      error: errorFrame('UNKNOWN_COMMAND', `unknown command kind "${String(record.kind).slice(0, 64)}"; expected one of ${AGENT_COMMAND_KINDS.join(', ')}`, ref),
    };
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issues = issuesOf(parsed.error);
    const code: AgentErrorCode = type === 'command' ? 'INVALID_COMMAND' : 'MALFORMED_FRAME';
    const first = issues[0];
    return {
      ok: false,
      error: errorFrame(code, `invalid ${type} frame${first ? `: ${first.path || '(root)'}: ${first.message}` : ''}`, { ...ref, details: { issues } }),
    };
  }
  return { ok: true, frame: parsed.data };
}

/** Validates a frame the agent sent. Never throws: bad input becomes an error frame to send back. */
export function decodeUpFrame(raw: RawFrame): DecodeResult<UpFrame> {
  return decode(raw, upSchemas, 'up') as DecodeResult<UpFrame>;
}

/** Validates a frame the API sent. Never throws: bad input becomes an error frame to send back. */
export function decodeDownFrame(raw: RawFrame): DecodeResult<DownFrame> {
  return decode(raw, downSchemas, 'down') as DecodeResult<DownFrame>;
}

/** Serializes a frame, refusing to produce one the other end would reject for size. */
export function encodeFrame(frame: UpFrame | DownFrame): string {
  const text = JSON.stringify(frame);
  if (Buffer.byteLength(text, 'utf8') > MAX_AGENT_FRAME_BYTES) {
    throw new RangeError(`frame of type ${frame.type} exceeds ${MAX_AGENT_FRAME_BYTES} bytes; split it or trim it`);
  }
  return text;
}
