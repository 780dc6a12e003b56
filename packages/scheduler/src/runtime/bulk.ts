// Version-checked updates of many rows in few statements. A placement round changes thousands
// of task rows; one statement per row would make the commit, not the planning, the bottleneck.
import type { Prisma } from '@deskpool/db';
import type { EntityKind } from '../core/types.js';

type Tx = Prisma.TransactionClient;
type UpdatableKind = Exclude<EntityKind, 'operations'>;

const TABLES: Record<UpdatableKind, string> = {
  pools: 'pools',
  hosts: 'hosts',
  vms: 'desktop_vms',
  users: 'users',
  jobs: 'batch_jobs',
  tasks: 'batch_tasks',
};

/** SQL column and type of every Prisma field the runtime writes (see mapping.columnsForUpdate). */
const COLUMNS: Record<UpdatableKind, Record<string, [column: string, type: string]>> = {
  pools: { preStageBudget: ['pre_stage_budget', 'jsonb'] },
  hosts: {
    presenceState: ['presence_state', 'presence_state'],
    presenceSince: ['presence_since', 'timestamptz'],
    onlineState: ['online_state', 'host_online_state'],
    needsReconcile: ['needs_reconcile', 'boolean'],
    asleep: ['asleep', 'boolean'],
    drained: ['drained', 'boolean'],
  },
  vms: {
    state: ['state', 'vm_state'],
    stateChangedAt: ['state_changed_at', 'timestamptz'],
    pinned: ['pinned', 'boolean'],
    currentHostId: ['current_host_id', 'uuid'],
    sourceHostId: ['source_host_id', 'uuid'],
    desiredHostId: ['desired_host_id', 'uuid'],
    fencingGeneration: ['fencing_generation', 'integer'],
    savedStateHostId: ['saved_state_host_id', 'uuid'],
    savedStatePath: ['saved_state_path', 'text'],
    augmentedVcpus: ['augmented_vcpus', 'integer'],
    augmentedMemoryMiB: ['augmented_memory_mib', 'integer'],
  },
  users: { arrivals: ['arrivals', 'timestamptz[]'], preStage: ['pre_stage', 'jsonb'] },
  jobs: { cancelRequestedAt: ['cancel_requested_at', 'timestamptz'] },
  tasks: {
    state: ['state', 'task_state'],
    startedAt: ['started_at', 'timestamptz'],
    finishedAt: ['finished_at', 'timestamptz'],
    hostId: ['host_id', 'uuid'],
    generation: ['generation', 'integer'],
    attempts: ['attempts', 'integer'],
    restarts: ['restarts', 'integer'],
    afterStop: ['after_stop', 'text'],
    checkpointHostId: ['checkpoint_host_id', 'uuid'],
    checkpointPath: ['checkpoint_path', 'text'],
  },
};

/** A field the bulk writer has no column for: a runtime bug (mapping and this table disagree). */
export class UnknownColumnError extends Error {
  constructor(entity: string, field: string) {
    super(`No SQL column known for ${entity}.${field}: add it to COLUMNS in packages/scheduler/src/runtime/bulk.ts`);
    this.name = 'UnknownColumnError';
  }
}

export interface RowUpdate {
  id: string;
  /** The version read with the snapshot; the row is written only if it still has it. */
  version: number;
  data: Record<string, unknown>;
}

/** JSON form of a value for jsonb_to_recordset (which reads enums, uuids, arrays by type). */
function jsonValue(value: unknown): unknown {
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map(jsonValue);
  return value ?? null;
}

/**
 * Applies the updates of one kind, grouped by the set of columns they change, one statement
 * per group (the rows travel as one JSON parameter). Returns the ids that were NOT written
 * because their version moved on (empty when all went through).
 */
export async function updateVersionedRows(tx: Tx, kind: UpdatableKind, rows: RowUpdate[], now: Date): Promise<string[]> {
  const groups = new Map<string, RowUpdate[]>();
  for (const row of rows) {
    const signature = Object.keys(row.data).sort().join(',');
    const group = groups.get(signature);
    if (group) group.push(row);
    else groups.set(signature, [row]);
  }
  const missing: string[] = [];
  for (const [signature, group] of groups) {
    const fields = signature === '' ? [] : signature.split(',');
    const columns = fields.map((f) => {
      const c = COLUMNS[kind][f];
      if (!c) throw new UnknownColumnError(kind, f);
      return c;
    });
    const json = group.map((row) => {
      const o: Record<string, unknown> = { id: row.id, version: row.version };
      fields.forEach((f, i) => (o[`c${i}`] = jsonValue(row.data[f])));
      return o;
    });
    const types = ['id uuid', 'version integer', ...columns.map(([, type], i) => `c${i} ${ENUM_TYPES.has(type) ? `"${type}"` : type}`)];
    const sets = [...columns.map(([column], i) => `"${column}" = v.c${i}`), `"version" = t."version" + 1`, `"updated_at" = $2::timestamptz`];
    const sql =
      `UPDATE "${TABLES[kind]}" AS t SET ${sets.join(', ')} ` +
      `FROM jsonb_to_recordset($1::jsonb) AS v(${types.join(', ')}) ` +
      `WHERE t."id" = v.id AND t."version" = v.version RETURNING t."id"::text AS id`;
    const written = await tx.$queryRawUnsafe<{ id: string }[]>(sql, JSON.stringify(json), now.toISOString());
    if (written.length !== group.length) {
      const ok = new Set(written.map((w) => w.id));
      for (const row of group) if (!ok.has(row.id)) missing.push(row.id);
    }
  }
  return missing;
}

const ENUM_TYPES = new Set(['vm_state', 'task_state', 'presence_state', 'host_online_state']);

/** How many of these idempotency keys already have an operation (one statement, one parameter). */
export async function countExistingKeys(tx: Tx, keys: string[]): Promise<number> {
  if (keys.length === 0) return 0;
  const [row] = await tx.$queryRawUnsafe<{ n: number }[]>(
    `SELECT count(*)::int AS n FROM "operations" WHERE "idempotency_key" IN (SELECT jsonb_array_elements_text($1::jsonb))`,
    JSON.stringify(keys),
  );
  return row?.n ?? 0;
}

/** A new operation row (the columns the scheduler sets; the rest take their defaults). */
export interface OperationInsert {
  id: string;
  idempotencyKey: string;
  hostId: string;
  vmId: string | null;
  taskId: string | null;
  kind: string;
  generation: number;
  params: unknown;
  planned: unknown;
  /**
   * Write its `operation.planned.<type>` audit event (the planner's operations; not the
   * source half of a live migration). `frameKind`: the agent command's kind, null when the
   * command could not be formed.
   */
  audit?: { frameKind: string | null };
}

/**
 * Inserts operations (status pending) and the audit event of each planned one in one
 * statement. The audit rows are built by PostgreSQL from the operation rows (type and cause
 * come from `planned`), so their text does not travel a second time: at 4000 placements the
 * parameters are what costs most, on both sides of the connection.
 */
export async function insertOperations(tx: Tx, rows: OperationInsert[], actor: string): Promise<void> {
  if (rows.length === 0) return;
  const json = rows.map((r) => ({
    id: r.id,
    idempotency_key: r.idempotencyKey,
    host_id: r.hostId,
    vm_id: r.vmId,
    task_id: r.taskId,
    kind: r.kind,
    generation: r.generation,
    params: r.params,
    planned: r.planned,
    // 0: no audit event; 1: audit naming the agent command's kind; 2: audit with kind null.
    audit: r.audit ? (r.audit.frameKind === null ? 2 : 1) : 0,
  }));
  await tx.$executeRawUnsafe(
    `WITH x AS MATERIALIZED (
       SELECT * FROM ROWS FROM (jsonb_to_recordset($1::jsonb) AS (id uuid, idempotency_key text, host_id uuid, vm_id uuid, task_id uuid, kind text, generation integer, params jsonb, planned jsonb, audit smallint))
            WITH ORDINALITY AS x(id, idempotency_key, host_id, vm_id, task_id, kind, generation, params, planned, audit, n)
     ), inserted AS (
       INSERT INTO "operations" ("id", "idempotency_key", "host_id", "vm_id", "task_id", "kind", "generation", "params", "planned", "status")
       SELECT x.id, x.idempotency_key, x.host_id, x.vm_id, x.task_id, x.kind, x.generation, x.params, x.planned, 'pending'::"operation_status" FROM x
     )
     INSERT INTO "audit_events" ("entity_type", "entity_id", "action", "actor", "cause", "after")
     SELECT 'operation', x.id::text, 'operation.planned.' || (x.planned ->> 'type'), $2,
            'event:' || (x.planned #>> '{cause,event}') || '#' || (x.planned #>> '{cause,eventId}') || ' rule:' || (x.planned #>> '{cause,rule}'),
            jsonb_build_object('idempotencyKey', x.idempotency_key, 'hostId', x.host_id, 'generation', x.generation, 'kind', CASE WHEN x.audit = 1 THEN x.kind END)
     FROM x WHERE x.audit > 0 ORDER BY x.n`,
    JSON.stringify(json),
    actor,
  );
}

export interface AuditRow {
  entityType: string;
  entityId: string;
  action: string;
  actor: string;
  cause: string;
  before?: unknown;
  after?: unknown;
}

/**
 * Appends audit events in one statement, keeping their order (ids ascend as given). Rows go
 * as positional arrays and each distinct cause text once (a plan's rows share a few causes),
 * which halves the bytes of a placement round's audit.
 */
export async function insertAuditEvents(tx: Tx, rows: AuditRow[]): Promise<void> {
  if (rows.length === 0) return;
  const causeIndex = new Map<string, number>();
  const causes: string[] = [];
  const json = rows.map((r) => {
    let c = causeIndex.get(r.cause);
    if (c === undefined) {
      causeIndex.set(r.cause, (c = causes.length));
      causes.push(r.cause);
    }
    return [r.entityType, r.entityId, r.action, r.actor, c, r.before ?? null, r.after ?? null];
  });
  await tx.$executeRawUnsafe(
    `INSERT INTO "audit_events" ("entity_type", "entity_id", "action", "actor", "cause", "before", "after")
     SELECT e.r ->> 0, e.r ->> 1, e.r ->> 2, e.r ->> 3, c.causes ->> ((e.r ->> 4)::int), NULLIF(e.r -> 5, 'null'::jsonb), NULLIF(e.r -> 6, 'null'::jsonb)
     FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS e(r, n), (SELECT $2::jsonb AS causes) AS c
     ORDER BY e.n`,
    // JSON.stringify turns Dates into ISO strings, as recordAudit does.
    JSON.stringify(json, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)),
    JSON.stringify(causes),
  );
}
