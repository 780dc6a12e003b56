// The fuzzing engine shared by the fuzz tests (short form, in CI) and the fuzz bench (long form):
// a real API (PostgreSQL, Redis, agent gateway) whose route table is read as routes are added, so
// a new route is fuzzed without anyone listing it here; request and frame generators; and a
// digest of every table, to prove a rejected request changed nothing.
import { randomUUID } from 'node:crypto';
import type { TestDatabase } from '@deskpool/db/testing';
import { createTestDatabase } from '@deskpool/db/testing';
import { AGENT_PROTOCOL_VERSION, enrollRequestSchema, MAX_AGENT_FRAME_BYTES } from '@deskpool/protocol';
import { SchedulerEvents } from '@deskpool/scheduler';
import fc from 'fast-check';
import type { FastifyInstance, HTTPMethods, InjectOptions, RouteOptions } from 'fastify';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { z } from 'zod';
import { createAgentGateway, type AgentGateway } from '../src/agent/index.js';
import { buildApp } from '../src/app.js';
import { generateSecret, hashSecret, SECRET_PREFIX } from '../src/secrets.js';
import { REDIS_URL } from './helpers.js';

// ---------------------------------------------------------------- the target

export interface FuzzRoute {
  method: HTTPMethods;
  url: string;
  body?: z.ZodType;
  query?: z.ZodType;
}

export interface FuzzTarget {
  app: FastifyInstance;
  db: TestDatabase;
  redis: Redis;
  gateway: AgentGateway;
  url: string;
  port: number;
  routes: FuzzRoute[];
  /** Bearer tokens the fuzzer calls with, by role; their owners are never in `ids`. */
  tokens: Record<'admin' | 'user' | 'submitter', string>;
  /** Ids of seeded (and later created) rows, to reach past "not found". */
  ids: string[];
  /** Two enrolled hosts: A is the one the fuzzing agent speaks for; B's operations and tasks are out of A's reach. */
  hostA: { id: string; credential: string };
  hostB: { id: string; credential: string; operationKeys: string[]; taskIds: string[] };
  close(): Promise<void>;
}

/** Routes with no zod body schema on the route that still take a body (validated in the handler). */
const HANDLER_BODIES: Record<string, z.ZodType> = { 'POST /api/v1/agent/enroll': enrollRequestSchema };

function isZod(value: unknown): value is z.ZodType {
  return typeof value === 'object' && value !== null && typeof (value as { safeParse?: unknown }).safeParse === 'function';
}

export async function startFuzzTarget(): Promise<FuzzTarget> {
  const db = await createTestDatabase();
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  const prefix = `dpt:${randomUUID()}:`;
  const events = new SchedulerEvents({ connection: redis, prefix: `dpt-${randomUUID()}` });
  const gateway = createAgentGateway({ prisma: db.prisma, redis, channelPrefix: `${prefix}agent:`, keyPrefix: prefix, events });
  const routes: FuzzRoute[] = [];
  const onRoute = (route: RouteOptions) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods) {
      if (method === 'HEAD') continue; // fastify's automatic twin of each GET
      const schema = route.schema as { body?: unknown; querystring?: unknown } | undefined;
      const body = isZod(schema?.body) ? schema.body : HANDLER_BODIES[`${method} ${route.url}`];
      routes.push({ method, url: route.url, ...(body ? { body } : {}), ...(isZod(schema?.querystring) ? { query: schema.querystring } : {}) });
    }
  };
  // Limits high enough that the fuzzer reaches the routes, low enough that the limiter runs.
  const rateLimits = { windowMs: 60_000, enrollMax: 1_000_000, agentConnectMax: 1_000_000, failedAuthMax: 1_000_000, redis, keyPrefix: `${prefix}rl:` };
  const app = await buildApp({ logLevel: false, rateLimits }, { prisma: db.prisma, redis, agentRoutes: gateway.plugin, scheduler: events, onRoute });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  if (typeof address !== 'object' || address === null) throw new Error('the API did not bind a TCP port');

  const p = db.prisma;
  const token = async (role: 'admin' | 'user' | 'submitter', userId: string | null) => {
    const secret = generateSecret(SECRET_PREFIX.apiToken);
    await p.apiToken.create({ data: { name: `fuzz-${role}`, role, userId, tokenHash: hashSecret(secret) } });
    return secret;
  };
  const caller = { user: await p.user.create({ data: { name: 'fuzz-user', role: 'user' } }), submitter: await p.user.create({ data: { name: 'fuzz-submitter', role: 'submitter' } }) };
  const tokens = { admin: await token('admin', null), user: await token('user', caller.user.id), submitter: await token('submitter', caller.submitter.id) };

  // Rows for ids: a pool, a host per agent, users, a VM the fuzzing user owns and one it does not,
  // jobs of the fuzzing submitter and of another, an API token and an enrollment token.
  const pool = await p.pool.create({ data: { name: 'fuzz-pool', timeZone: 'UTC' } });
  const other = await p.user.create({ data: { name: 'fuzz-other', role: 'user', poolId: pool.id } });
  const otherSubmitter = await p.user.create({ data: { name: 'fuzz-other-submitter', role: 'submitter' } });
  const hostRow = async (name: string) => {
    const host = await p.host.create({ data: { name, poolId: pool.id } });
    const credential = generateSecret(SECRET_PREFIX.hostCredential);
    await p.hostCredential.create({ data: { hostId: host.id, secretHash: hashSecret(credential) } });
    return { id: host.id, credential };
  };
  const hostA = await hostRow('fuzz-host-a');
  const hostB = await hostRow('fuzz-host-b');
  // Hosts for the REST fuzzer to update, drain, fence or remove; A and B stay out of its reach so
  // the agent fuzzer that runs after it can still connect.
  const spareHosts = [await hostRow('fuzz-host-spare-1'), await hostRow('fuzz-host-spare-2')];
  const vm = (name: string, owner: string) =>
    p.desktopVm.create({ data: { name, ownerUserId: owner, poolId: pool.id, vcpus: 1, memoryMiB: 512, maxVcpus: 2, maxMemoryMiB: 1024, diskLocation: `/var/lib/deskpool/disks/${name}.qcow2` } });
  const vms = [await vm('dpt-fuzz-mine', caller.user.id), await vm('dpt-fuzz-theirs', other.id)];
  const job = async (name: string, submitter: string) => {
    const created = await p.batchJob.create({ data: { name, submitterUserId: submitter, submittedBy: `user:${name}`, spec: { name, command: ['true'] }, taskCount: 1 } });
    const task = await p.batchTask.create({ data: { jobId: created.id, index: 0, state: 'running', hostId: hostB.id, generation: 3 } });
    return { job: created, task };
  };
  const jobs = [await job('fuzz-mine', caller.submitter.id), await job('fuzz-theirs', otherSubmitter.id)];
  const opKeys: string[] = [];
  for (const [i, j] of jobs.entries()) {
    const key = `op-fuzz-b-${i}-${randomUUID()}`;
    await p.operation.create({ data: { idempotencyKey: key, hostId: hostB.id, taskId: j.task.id, kind: 'run-batch', generation: 3, status: 'sent', params: { taskId: j.task.id } } });
    opKeys.push(key);
  }
  const vmOpKey = `op-fuzz-b-vm-${randomUUID()}`;
  await p.operation.create({ data: { idempotencyKey: vmOpKey, hostId: hostB.id, vmId: vms[1]!.id, kind: 'restore', generation: 1, status: 'running' } });
  opKeys.push(vmOpKey);
  const spareToken = await p.apiToken.create({ data: { name: 'fuzz-spare', role: 'admin', tokenHash: hashSecret(generateSecret(SECRET_PREFIX.apiToken)) } });
  const enrollment = await p.enrollmentToken.create({
    data: { tokenHash: hashSecret(generateSecret(SECRET_PREFIX.enrollmentToken)), poolId: pool.id, createdBy: 'fuzz', expiresAt: new Date(Date.now() + 86_400_000) },
  });
  await installChangeCounter(db);
  const ids = [pool.id, other.id, otherSubmitter.id, ...spareHosts.map((h) => h.id), ...vms.map((v) => v.id), ...jobs.flatMap((j) => [j.job.id, j.task.id]), spareToken.id, enrollment.id];

  return {
    app,
    db,
    redis,
    gateway,
    port: address.port,
    url: `http://127.0.0.1:${address.port}`,
    routes,
    tokens,
    ids,
    hostA,
    hostB: { ...hostB, operationKeys: opKeys, taskIds: jobs.map((j) => j.task.id) },
    async close() {
      await app.close();
      await events.queue.obliterate({ force: true }).catch(() => undefined);
      await events.queue.close();
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
      await db.drop();
    },
  };
}

// ---------------------------------------------------------------- the database digest

/**
 * Columns left out of the digest, with why: api_tokens.last_used_at is bookkeeping the
 * authentication of any request (accepted or not) refreshes once a minute by design.
 */
const BOOKKEEPING_COLUMNS = ['last_used_at'];

const COUNTER_TABLE = 'fuzz_change_counter';

/**
 * A cheap per-case witness besides the digest: a row trigger on every table counts committed
 * row changes (an UPDATE that leaves the row as it was does not count; neither does the
 * bookkeeping column below). Transactional, so a rolled-back attempt counts nothing — as the
 * digest would see it.
 */
async function installChangeCounter(db: TestDatabase): Promise<void> {
  await db.prisma.$executeRawUnsafe(`CREATE TABLE ${COUNTER_TABLE} (n bigint NOT NULL)`);
  await db.prisma.$executeRawUnsafe(`INSERT INTO ${COUNTER_TABLE} VALUES (0)`);
  await db.prisma.$executeRawUnsafe(`
    CREATE FUNCTION fuzz_count_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'UPDATE' AND (to_jsonb(NEW) - 'last_used_at') = (to_jsonb(OLD) - 'last_used_at') THEN RETURN NULL; END IF;
      UPDATE ${COUNTER_TABLE} SET n = n + 1;
      RETURN NULL;
    END $$`);
  const tables = await db.prisma.$queryRaw<{ name: string }[]>`
    SELECT table_name::text AS name FROM information_schema.tables
    WHERE table_schema = 'public' AND table_type = 'BASE TABLE' AND table_name <> ${COUNTER_TABLE}`;
  for (const { name } of tables) {
    await db.prisma.$executeRawUnsafe(`CREATE TRIGGER fuzz_count AFTER INSERT OR UPDATE OR DELETE ON "${name}" FOR EACH ROW EXECUTE FUNCTION fuzz_count_change()`);
    await db.prisma.$executeRawUnsafe(`CREATE TRIGGER fuzz_count_truncate AFTER TRUNCATE ON "${name}" FOR EACH STATEMENT EXECUTE FUNCTION fuzz_count_change()`);
  }
}

/** Committed row changes so far (see installChangeCounter). */
export async function changeCount(db: TestDatabase): Promise<number> {
  const rows = await db.prisma.$queryRawUnsafe<{ n: bigint }[]>(`SELECT n FROM ${COUNTER_TABLE}`);
  return Number(rows[0]?.n ?? 0);
}

/**
 * Both witnesses of "a refused case changed nothing": the change counter around every case
 * (which case), and the digest of every table around every run of refused cases, at most
 * `every` cases long (which tables). An accepted case ends a run.
 */
class ChangeWitness {
  private base: Record<string, string> | null = null;
  private since = 0;
  private counter = 0;
  constructor(
    private readonly db: TestDatabase,
    private readonly every: number,
  ) {}

  async beforeCase(): Promise<void> {
    if (this.base === null) {
      this.base = await databaseDigest(this.db);
      this.since = 0;
    }
    this.counter = await changeCount(this.db);
  }

  /** After a refused case: what changed, if anything. */
  async afterRefused(): Promise<string | null> {
    const now = await changeCount(this.db);
    const problem = now !== this.counter ? `${now - this.counter} row change(s) committed` : null;
    this.since += 1;
    if (this.since >= this.every || problem) return (await this.checkDigest()) ?? problem;
    return null;
  }

  afterAccepted(): void {
    this.base = null;
  }

  /** Compares the digest with the run's start; call at the end too. */
  async checkDigest(): Promise<string | null> {
    if (this.base === null || this.since === 0) return null;
    const now = await databaseDigest(this.db);
    const changed = changedTables(this.base, now);
    this.base = now;
    this.since = 0;
    return changed.length > 0 ? `tables changed during a run of refused cases: ${changed.join(', ')}` : null;
  }
}

/** Per table, an md5 of all its rows (canonical JSON, sorted). Includes the audit trail. */
export async function databaseDigest(db: TestDatabase, options: { exclude?: { columns?: string[]; auditActions?: string[] } } = {}): Promise<Record<string, string>> {
  const tables = await db.prisma.$queryRaw<{ name: string }[]>`
    SELECT table_name::text AS name FROM information_schema.tables
    WHERE table_schema = 'public' AND table_type = 'BASE TABLE' AND table_name <> ${COUNTER_TABLE} ORDER BY table_name`;
  const columns = [...BOOKKEEPING_COLUMNS, ...(options.exclude?.columns ?? [])].map((c) => `'${c.replace(/'/g, '')}'`).join(', ');
  const actions = (options.exclude?.auditActions ?? []).map((a) => `'${a.replace(/'/g, '')}'`).join(', ');
  const parts = tables.map(({ name }) => {
    const row = `(to_jsonb(t) - ARRAY[${columns}]::text[])::text`;
    const where = name === 'audit_events' && actions !== '' ? `WHERE t.action NOT IN (${actions})` : '';
    return `SELECT '${name}' AS name, coalesce(md5(string_agg(${row}, E'\\n' ORDER BY ${row})), '') AS digest FROM "${name}" t ${where}`;
  });
  const rows = await db.prisma.$queryRawUnsafe<{ name: string; digest: string }[]>(parts.join(' UNION ALL '));
  return Object.fromEntries(rows.map((r) => [r.name, r.digest]));
}

/** The tables whose digest differs. */
export function changedTables(before: Record<string, string>, after: Record<string, string>): string[] {
  return [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((t) => before[t] !== after[t]).sort();
}

// ---------------------------------------------------------------- value generators

const hostile = {
  unicode: fc.string({ unit: 'grapheme', maxLength: 40 }),
  controls: fc.string({ unit: fc.integer({ min: 0, max: 0x1f }).map((c) => String.fromCharCode(c)), maxLength: 20 }),
  lone: fc.constantFrom('\ud800', 'a\udfffb', '\u0000', '\u202e', 'ﷺ', '𝕏'.repeat(50), '../../etc/passwd', "'; DROP TABLE pools; --", '%00', '${jndi:x}'),
  huge: fc.integer({ min: 5_000, max: 70_000 }).map((n) => 'x'.repeat(n)),
  numbers: fc.constantFrom(0, -1, 1e308, -1e308, Number.MAX_SAFE_INTEGER + 2, 2 ** 31, -(2 ** 31) - 1, 0.5, 1e-9),
};

/** A value nested `depth` deep, as arrays or objects. */
export function deeplyNested(depth: number, kind: 'array' | 'object'): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = kind === 'array' ? [v] : { a: v };
  return v;
}

const junk: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 2, arbitrary: hostile.unicode },
  { weight: 1, arbitrary: hostile.controls },
  { weight: 2, arbitrary: hostile.lone },
  { weight: 1, arbitrary: hostile.huge },
  { weight: 2, arbitrary: hostile.numbers },
  { weight: 1, arbitrary: fc.integer({ min: 20, max: 3000 }).chain((d) => fc.constantFrom(deeplyNested(d, 'array'), deeplyNested(d, 'object'))) },
);

type JsonSchema = {
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  format?: string;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minItems?: number;
  maxItems?: number;
  items?: JsonSchema;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
};

/** A plausible value for a JSON schema (mostly valid), so cases reach past the first check. */
function fromSchema(schema: JsonSchema, ids: string[], depth = 0): fc.Arbitrary<unknown> {
  if (depth > 4) return fc.jsonValue({ maxDepth: 1 });
  if (schema.const !== undefined) return fc.constant(schema.const);
  if (schema.enum) return fc.constantFrom(...schema.enum);
  const alternatives = schema.anyOf ?? schema.oneOf;
  if (alternatives && alternatives.length > 0) return fc.oneof(...alternatives.map((s) => fromSchema(s, ids, depth + 1)));
  if (schema.allOf && schema.allOf.length > 0) return fromSchema(schema.allOf[0]!, ids, depth + 1);
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  switch (type) {
    case 'string': {
      if (schema.format === 'uuid') return fc.oneof(fc.constantFrom(...ids), fc.uuid());
      if (schema.format === 'date-time') return fc.date({ min: new Date('2020-01-01'), max: new Date('2035-01-01'), noInvalidDate: true }).map((d) => d.toISOString());
      if (schema.pattern) {
        try {
          return fc.stringMatching(new RegExp(schema.pattern)).filter((s) => s.length >= (schema.minLength ?? 0) && s.length <= (schema.maxLength ?? 10_000));
        } catch {
          // A pattern fast-check cannot generate from: plain strings will do.
        }
      }
      return fc.string({ minLength: schema.minLength ?? 0, maxLength: Math.min(schema.maxLength ?? 32, 64) });
    }
    case 'integer': {
      const min = Math.max(schema.minimum ?? (schema.exclusiveMinimum !== undefined ? schema.exclusiveMinimum + 1 : -1000), -(2 ** 31));
      const max = Math.min(schema.maximum ?? (schema.exclusiveMaximum !== undefined ? schema.exclusiveMaximum - 1 : 100_000), 2 ** 31 - 1);
      return min <= max ? fc.integer({ min, max }) : fc.integer();
    }
    case 'number':
      return fc.double({ min: schema.minimum ?? -1e6, max: schema.maximum ?? 1e6, noNaN: true });
    case 'boolean':
      return fc.boolean();
    case 'null':
      return fc.constant(null);
    case 'array':
      return fc.array(schema.items ? fromSchema(schema.items, ids, depth + 1) : fc.jsonValue({ maxDepth: 1 }), {
        minLength: schema.minItems ?? 0,
        maxLength: Math.max(schema.minItems ?? 0, Math.min(schema.maxItems ?? 4, 4)),
      });
    case 'object': {
      const props = schema.properties ?? {};
      const keys = Object.keys(props);
      if (keys.length === 0) return fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 16 }), { maxKeys: 3 });
      const record = Object.fromEntries(keys.map((k) => [k, fromSchema(props[k]!, ids, depth + 1)]));
      return fc.record(record, { requiredKeys: (schema.required ?? []).filter((k) => keys.includes(k)) });
    }
    default:
      return fc.jsonValue({ maxDepth: 2 });
  }
}

/** Breaks a plausible value in one place: a field dropped, retyped, made hostile, or an unknown one added. */
function mutate(value: unknown): fc.Arbitrary<unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return fc.oneof(fc.constant(value), junk);
  const keys = Object.keys(value);
  const record = value as Record<string, unknown>;
  const options: fc.Arbitrary<unknown>[] = [
    fc.constant(value),
    fc.tuple(fc.string({ maxLength: 12 }), junk).map(([k, v]) => ({ ...record, [k]: v })),
  ];
  const stringKeys = keys.filter((k) => typeof record[k] === 'string');
  if (stringKeys.length > 0) {
    // A control character (NUL above all: PostgreSQL cannot store it) inside an otherwise valid string.
    options.push(fc.tuple(fc.constantFrom(...stringKeys), fc.constantFrom('\u0000', '\u0001', '\u001b[31m', '\r\n')).map(([k, c]) => ({ ...record, [k]: `${String(record[k])}${c}` })));
  }
  if (keys.length > 0) {
    options.push(fc.constantFrom(...keys).map((k) => Object.fromEntries(Object.entries(record).filter(([key]) => key !== k))));
    options.push(fc.tuple(fc.constantFrom(...keys), junk).map(([k, v]) => ({ ...record, [k]: v })));
    options.push(fc.tuple(fc.constantFrom(...keys), junk).map(([k, v]) => ({ ...record, [k]: v })));
  }
  return fc.oneof(...options);
}

function jsonSchemaOf(schema: z.ZodType): JsonSchema {
  try {
    return z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  } catch {
    return {};
  }
}

// ---------------------------------------------------------------- REST cases

export interface RestCase {
  route: string;
  request: InjectOptions;
}

/** Percent-encodes any string, lone surrogates included (made well-formed first). */
const encode = (s: string): string => encodeURIComponent(s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD'));

type Caller = 'admin' | 'user' | 'submitter' | 'none' | 'garbage';

/** Per route, its cases: principal, path parameters, query, body (or raw bytes, wrong content types). */
export function restCases(target: FuzzTarget): fc.Arbitrary<RestCase>[] {
  return target.routes.map((route) => {
    const body = route.body ? fromSchema(jsonSchemaOf(route.body), target.ids).chain(mutate) : fc.oneof(fc.constant(undefined), junk);
    const query = route.query
      ? fromSchema(jsonSchemaOf(route.query), target.ids)
          .chain(mutate)
          .map((q) => (typeof q === 'object' && q !== null && !Array.isArray(q) ? q : { q }))
      : fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 16 }), { maxKeys: 2 });
    const params = (route.url.match(/:[A-Za-z0-9_]+/g) ?? []).map(() =>
      fc.oneof(
        { weight: 6, arbitrary: fc.constantFrom(...target.ids).map(encode) },
        { weight: 2, arbitrary: fc.uuid().map(encode) },
        { weight: 2, arbitrary: fc.oneof(hostile.unicode, hostile.lone, fc.string({ maxLength: 300 })).map(encode) },
        // Sent as they are: broken percent-encoding and traversal.
        { weight: 1, arbitrary: fc.constantFrom('%', '%E0%A4%A', '%00', '..%2f..%2f', '%C0%AF', '%ZZ') },
      ),
    );
    const wildcard = route.url.includes('*') ? fc.oneof(fc.string({ maxLength: 40 }), hostile.lone).map(encode) : fc.constant('');
    const caller: fc.Arbitrary<Caller> = fc.oneof(
      { weight: 8, arbitrary: fc.constant<Caller>('admin') },
      { weight: 2, arbitrary: fc.constant<Caller>('user') },
      { weight: 2, arbitrary: fc.constant<Caller>('submitter') },
      { weight: 1, arbitrary: fc.constant<Caller>('none') },
      { weight: 1, arbitrary: fc.constant<Caller>('garbage') },
    );
    const encoding = fc.oneof(
      { weight: 12, arbitrary: fc.constant<'json'>('json') },
      { weight: 1, arbitrary: fc.constant<'raw'>('raw') },
      { weight: 1, arbitrary: fc.constant<'text'>('text') },
      { weight: 1, arbitrary: fc.constant<'form'>('form') },
    );
    return fc
      .record({ body, query, params: fc.tuple(...params), wildcard, caller, encoding, raw: fc.uint8Array({ maxLength: 300 }), garbageToken: fc.oneof(hostile.unicode, hostile.lone, fc.string({ maxLength: 200 })) })
      .map(({ body: b, query: q, params: ps, wildcard: w, caller: who, encoding: enc, raw, garbageToken }): RestCase => {
        let i = 0;
        const path = route.url.replace(/:[A-Za-z0-9_]+/g, () => ps[i++] ?? '').replace('*', w);
        const qs = new URLSearchParams(Object.entries(q as Record<string, unknown>).map(([k, v]): [string, string] => [k, typeof v === 'string' ? v : (JSON.stringify(v) ?? '')])).toString();
        const headers: Record<string, string> = {};
        if (who === 'garbage') headers.authorization = `Bearer ${encode(garbageToken).slice(0, 500)}`;
        else if (who !== 'none') headers.authorization = `Bearer ${target.tokens[who]}`;
        const request: InjectOptions = { method: route.method, url: qs === '' ? path : `${path}?${qs}`, headers };
        if (route.method !== 'GET' && route.method !== 'DELETE') {
          if (enc === 'raw') {
            request.payload = Buffer.from(raw);
            headers['content-type'] = 'application/json';
          } else if (enc === 'text') {
            request.payload = JSON.stringify(b) ?? '';
            headers['content-type'] = 'text/plain';
          } else if (enc === 'form') {
            request.payload = 'a=1&b=2';
            headers['content-type'] = 'application/x-www-form-urlencoded';
          } else if (b !== undefined) {
            request.payload = JSON.stringify(b);
            headers['content-type'] = 'application/json';
          }
        }
        return { route: `${route.method} ${route.url}`, request };
      });
  });
}

/** `count` cases spread round-robin over every route, so each route gets its share. */
function sampleRestCases(target: FuzzTarget, count: number, seed: number): RestCase[] {
  const perRoute = restCases(target).map((arb, i) => fc.sample(arb, { numRuns: Math.ceil(count / target.routes.length), seed: seed + i }));
  const out: RestCase[] = [];
  for (let round = 0; out.length < count; round++) {
    for (const cases of perRoute) if (out.length < count && cases[round]) out.push(cases[round]!);
  }
  return out;
}

export interface FuzzFinding {
  kind: '5xx' | 'db-changed' | 'bad-envelope' | 'no-answer' | 'crash';
  what: string;
  detail: string;
}

export interface FuzzTally {
  cases: number;
  responses5xx: number;
  rejected: number;
  accepted: number;
  byRoute: Record<string, number>;
  findings: FuzzFinding[];
}

const newTally = (): FuzzTally => ({ cases: 0, responses5xx: 0, rejected: 0, accepted: 0, byRoute: {}, findings: [] });

/** Same error envelope everywhere; a 4xx without it is a finding too. */
function hasEnvelope(body: string): boolean {
  try {
    const parsed = JSON.parse(body) as { error?: { code?: unknown; message?: unknown } };
    return typeof parsed.error?.code === 'string' && typeof parsed.error.message === 'string';
  } catch {
    return false;
  }
}

/** How many refused cases at most between two digests of every table. */
const DIGEST_EVERY = 25;

/** Sends `count` generated requests; for each rejected one (4xx) the database must not have changed. */
export async function runRestFuzz(target: FuzzTarget, options: { count: number; seed: number; stopAt?: number }): Promise<FuzzTally> {
  const tally = newTally();
  const samples = sampleRestCases(target, options.count, options.seed);
  const witness = new ChangeWitness(target.db, DIGEST_EVERY);
  for (const c of samples) {
    await witness.beforeCase();
    const res = await target.app.inject(c.request);
    tally.cases += 1;
    tally.byRoute[c.route] = (tally.byRoute[c.route] ?? 0) + 1;
    const what = `${c.request.method} ${String(c.request.url).slice(0, 200)} as ${String((c.request.headers as Record<string, string>).authorization ?? 'anonymous').slice(0, 30)}`;
    if (res.statusCode >= 500) {
      tally.responses5xx += 1;
      tally.findings.push({ kind: '5xx', what, detail: `${res.statusCode} ${res.body.slice(0, 300)} body=${String(c.request.payload ?? '').slice(0, 300)}` });
      witness.afterAccepted();
    } else if (res.statusCode >= 400) {
      tally.rejected += 1;
      const changed = await witness.afterRefused();
      if (changed) tally.findings.push({ kind: 'db-changed', what, detail: `${res.statusCode}: ${changed}` });
      if (!hasEnvelope(res.body)) tally.findings.push({ kind: 'bad-envelope', what, detail: `${res.statusCode} ${res.body.slice(0, 200)}` });
    } else {
      tally.accepted += 1;
      witness.afterAccepted();
      const created = /"id":"([0-9a-f-]{36})"/.exec(res.body)?.[1];
      if (created && res.statusCode === 201 && target.ids.length < 200) target.ids.push(created);
    }
    if (options.stopAt !== undefined && tally.findings.length >= options.stopAt) break;
  }
  const last = await witness.checkDigest();
  if (last) tally.findings.push({ kind: 'db-changed', what: 'the last run of refused requests', detail: last });
  return tally;
}

// ---------------------------------------------------------------- agent protocol cases

const at = '2026-11-26T09:00:00.000Z';

/** Valid frames of every type, as an agent on host A would send them. */
function validFrames(): Record<string, unknown>[] {
  const inventory = {
    hostname: 'fuzz-host-a', cpuCores: 4, memoryMiB: 8192, diskGiB: 100, gpus: [], macAddresses: ['52:54:00:00:00:0a'],
    hypervisor: { kvm: true, libvirtVersion: '9.0.0', qemuVersion: '7.2.0', liveMigration: true, hotplugCpu: true, hotplugMemory: true }, agentVersion: 'fuzz',
  };
  return [
    { type: 'heartbeat', seq: 1, at, uptimeSeconds: 10 },
    { type: 'presence', seq: 1, at, state: 'idle', idleSince: '2026-11-26T08:00:00.000Z', source: 'evdev' },
    { type: 'presence', seq: 1, at, state: 'present', idleSince: null, source: 'logind' },
    { type: 'signin', seq: 1, at, user: 'fuzz-user' },
    { type: 'inventory', seq: 1, at, inventory },
    { type: 'domain-state', seq: 1, at, domains: [{ domainName: 'dpt-fuzz-mine', state: 'running' }] },
    { type: 'op-progress', seq: 1, at, idempotencyKey: 'op-nothing-00001', percent: 50, message: 'copy' },
    { type: 'op-result', seq: 1, at, idempotencyKey: 'op-nothing-00001', outcome: 'failed', replayed: false, error: { code: 'X', message: 'y' } },
    { type: 'events-dropped', seq: 1, at, count: 3, oldestAt: at, newestAt: at, countsByType: { presence: 3 } },
    { type: 'task-output', seq: 1, at, taskId: randomUUID(), generation: 1, offset: 0, data: 'hello' },
    { type: 'task-finished', seq: 1, at, taskId: randomUUID(), generation: 1, exitCode: 0 },
  ];
}

/** Frames that speak for host B: its operations, its tasks. Every one must be refused and change nothing. */
function foreignFrames(target: FuzzTarget): fc.Arbitrary<Record<string, unknown>> {
  const key = fc.constantFrom(...target.hostB.operationKeys);
  const task = fc.constantFrom(...target.hostB.taskIds);
  const generation = fc.oneof(fc.constant(3), fc.nat(10));
  return fc.oneof(
    fc.tuple(key, fc.constantFrom(...(['succeeded', 'failed', 'refused'] as const))).map(([k, outcome]) => ({ type: 'op-result', seq: 1, at, idempotencyKey: k, outcome, replayed: false, ...(outcome === 'succeeded' ? { result: { foundRunningVmIds: [] } } : { error: { code: 'X', message: 'spoofed' } }) })),
    fc.tuple(key, fc.integer({ min: 0, max: 100 })).map(([k, percent]) => ({ type: 'op-progress', seq: 1, at, idempotencyKey: k, percent, message: 'spoof' })),
    fc.tuple(task, generation, fc.string({ minLength: 1, maxLength: 100 })).map(([taskId, g, data]) => ({ type: 'task-output', seq: 1, at, taskId, generation: g, offset: 0, data })),
    fc.tuple(task, generation, fc.integer({ min: -1, max: 255 })).map(([taskId, g, exitCode]) => ({ type: 'task-finished', seq: 1, at, taskId, generation: g, exitCode })),
  );
}

export interface AgentCase {
  /** What is sent, as text. */
  raw: string;
  /** Frames that must be refused (error frame) and change nothing. */
  mustBeRefused: boolean;
  label: string;
}

/** Malformed, mutated, hostile, replayed, out-of-order and foreign frames. */
export function agentCases(target: FuzzTarget): fc.Arbitrary<AgentCase> {
  const valid = validFrames();
  const seqs = fc.oneof(fc.integer({ min: 1, max: 1_000_000 }), fc.constantFrom(1, 1, 2, 0, -1, 2 ** 53, 1.5));
  const mutated = fc.tuple(fc.constantFrom(...valid), seqs).chain(([frame, seq]) => mutate({ ...frame, seq })).map((f) => ({ raw: JSON.stringify(f) ?? 'null', mustBeRefused: false, label: 'mutated' }));
  // Replays and out-of-order: a valid frame with an old, repeated or jumping seq is acked once applied idempotently.
  const replayed = fc.tuple(fc.constantFrom(...valid), seqs).map(([frame, seq]) => ({ raw: JSON.stringify({ ...frame, seq }), mustBeRefused: false, label: 'replayed/out-of-order' }));
  const foreign = fc.tuple(foreignFrames(target), fc.integer({ min: 1, max: 1_000_000 })).map(([f, seq]) => ({ raw: JSON.stringify({ ...f, seq }), mustBeRefused: true, label: 'foreign' }));
  const rawJunk = fc
    .oneof(
      fc.string({ maxLength: 200 }),
      fc.json({ maxDepth: 3 }),
      hostile.unicode,
      hostile.lone,
      fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a).toString('latin1')),
      // Built as text, so the nesting can go deeper than JSON.stringify itself could (and stay
      // under the 4x frame size beyond which the socket is closed with 1009 by design).
      fc.integer({ min: 100, max: 100_000 }).map((d) => `{"type":"presence","seq":1,"nested":${'['.repeat(d)}1${']'.repeat(d)}}`),
      fc.integer({ min: 100, max: 40_000 }).map((d) => `{"type":"domain-state","seq":1,"at":"${at}","domains":${'{"a":'.repeat(d)}1${'}'.repeat(d)}}`),
      fc.constantFrom('{"type":"heartbeat"', '[]', 'null', '{"type":123}', '{"type":"__proto__","seq":1}', '{"type":"constructor"}', '{"type":"hello","protocolVersion":1,"agentVersion":"again"}'),
    )
    .map((raw) => ({ raw, mustBeRefused: true, label: 'junk' }));
  const oversized = fc.integer({ min: MAX_AGENT_FRAME_BYTES + 1, max: MAX_AGENT_FRAME_BYTES * 2 }).map((n) => ({ raw: JSON.stringify({ type: 'inventory', seq: 1, at, pad: 'x'.repeat(n) }), mustBeRefused: true, label: 'oversized' }));
  return fc.oneof(
    { weight: 6, arbitrary: mutated },
    { weight: 2, arbitrary: replayed },
    { weight: 3, arbitrary: foreign },
    { weight: 4, arbitrary: rawJunk },
    { weight: 1, arbitrary: oversized },
  );
}

export interface AgentSocket {
  ws: WebSocket;
  /** Command frames the gateway sent on this connection. */
  commands: Record<string, unknown>[];
  next(timeoutMs?: number): Promise<Record<string, unknown>>;
  close(): void;
}

/** Opens host A's channel and exchanges hello. */
export async function connectAgent(target: FuzzTarget, credential = target.hostA.credential): Promise<AgentSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${target.port}/api/v1/agent/ws`, { headers: { authorization: `Bearer ${credential}` } });
  const inbox: Record<string, unknown>[] = [];
  const commands: Record<string, unknown>[] = [];
  const waiters: ((f: Record<string, unknown>) => void)[] = [];
  ws.on('message', (d: Buffer) => {
    const frame = JSON.parse(d.toString()) as Record<string, unknown>;
    if (frame.type === 'command') {
      commands.push(frame); // not an answer to a frame
      return;
    }
    const w = waiters.shift();
    if (w) w(frame);
    else inbox.push(frame);
  });
  await new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject)));
  const socket: AgentSocket = {
    ws,
    commands,
    next(timeoutMs = 10_000) {
      const ready = inbox.shift();
      if (ready) return Promise.resolve(ready);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no answer from the gateway')), timeoutMs);
        const closed = () => (clearTimeout(timer), reject(new Error('the gateway closed the connection')));
        ws.once('close', closed);
        waiters.push((f) => (clearTimeout(timer), ws.off('close', closed), resolve(f)));
      });
    },
    close: () => ws.close(),
  };
  ws.send(JSON.stringify({ type: 'hello', protocolVersion: AGENT_PROTOCOL_VERSION, agentVersion: 'fuzz' }));
  const hello = await socket.next();
  if (hello.type !== 'hello') throw new Error(`expected hello, got ${JSON.stringify(hello)}`);
  return socket;
}

/**
 * A new connection once the old one's bookkeeping (host offline, then online, and their audit
 * events, written after the close) has settled, so it is not taken for a refused frame's doing.
 */
async function reconnect(target: FuzzTarget): Promise<AgentSocket> {
  const socket = await connectAgent(target);
  await settled(target.db);
  return socket;
}

/** Waits until no row has changed for a few polls (connection bookkeeping is written after the fact). */
export async function settled(db: TestDatabase): Promise<void> {
  let last = -1;
  for (let stable = 0; stable < 3; ) {
    await new Promise((r) => setTimeout(r, 100));
    const now = await changeCount(db);
    stable = now === last ? stable + 1 : 0;
    last = now;
  }
}

/**
 * Sends `count` generated frames over one real WebSocket, one at a time; each must be answered
 * (ack or error) with the connection kept open, and a refused frame must change nothing.
 */
export async function runAgentFuzz(target: FuzzTarget, options: { count: number; seed: number; stopAt?: number }): Promise<FuzzTally> {
  const tally = newTally();
  const samples = fc.sample(agentCases(target), { numRuns: options.count, seed: options.seed });
  let socket = await reconnect(target);
  const witness = new ChangeWitness(target.db, DIGEST_EVERY);
  for (const [i, c] of samples.entries()) {
    await witness.beforeCase();
    tally.cases += 1;
    tally.byRoute[c.label] = (tally.byRoute[c.label] ?? 0) + 1;
    const what = `frame ${i} (${c.label}): ${c.raw.slice(0, 200)}`;
    socket.ws.send(c.raw);
    let reply: Record<string, unknown>;
    try {
      reply = await socket.next();
    } catch (err) {
      tally.findings.push({ kind: 'no-answer', what, detail: String(err) });
      socket.close();
      socket = await reconnect(target);
      witness.afterAccepted();
      continue;
    }
    if (reply.type === 'error' && reply.code === 'INTERNAL') {
      tally.responses5xx += 1;
      tally.findings.push({ kind: '5xx', what, detail: JSON.stringify(reply).slice(0, 300) });
      witness.afterAccepted();
    } else if (reply.type === 'error') {
      tally.rejected += 1;
      const changed = await witness.afterRefused();
      if (changed) tally.findings.push({ kind: 'db-changed', what, detail: `${String(reply.code)}: ${changed}` });
    } else if (reply.type === 'ack') {
      tally.accepted += 1;
      witness.afterAccepted();
      if (c.mustBeRefused) tally.findings.push({ kind: 'db-changed', what, detail: 'accepted a frame that must be refused' });
    } else {
      tally.findings.push({ kind: 'bad-envelope', what, detail: `unexpected answer ${JSON.stringify(reply).slice(0, 200)}` });
      witness.afterAccepted();
    }
    if (socket.ws.readyState !== WebSocket.OPEN) {
      tally.findings.push({ kind: 'no-answer', what, detail: 'the gateway closed the connection after a non-fatal frame' });
      socket = await reconnect(target);
      witness.afterAccepted();
    }
    if (options.stopAt !== undefined && tally.findings.length >= options.stopAt) break;
  }
  const last = await witness.checkDigest();
  if (last) tally.findings.push({ kind: 'db-changed', what: 'the last run of refused frames', detail: last });
  socket.close();
  return tally;
}

/** Adds one tally to another (REST + agent = one run's totals). */
export function mergeTallies(...tallies: FuzzTally[]): FuzzTally {
  const out = newTally();
  for (const t of tallies) {
    out.cases += t.cases;
    out.responses5xx += t.responses5xx;
    out.rejected += t.rejected;
    out.accepted += t.accepted;
    out.findings.push(...t.findings);
    for (const [k, v] of Object.entries(t.byRoute)) out.byRoute[k] = (out.byRoute[k] ?? 0) + v;
  }
  return out;
}
