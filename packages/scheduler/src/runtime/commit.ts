// Writes one plan to PostgreSQL inside the caller's transaction: transitions with optimistic
// concurrency, operations under their idempotency keys, one audit event per change.
import { randomUUID } from 'node:crypto';
import type { Prisma } from '@deskpool/db';
import { countExistingKeys, insertAuditEvents, insertOperations, updateVersionedRows, type AuditRow, type OperationInsert, type RowUpdate } from './bulk.js';
import type { Action, Command, EntityKind, Plan, TransitionRecord } from '../core/types.js';
import { agentCommandFor, commandFrameFor, migrateOutFor, migrateOutKeyOf, subjectOfCommand, wireKey } from './commands.js';
import { columnsForUpdate, companionPlanned, plannedOf } from './mapping.js';
import type { CommandFrameInput } from '@deskpool/protocol';
import type { LoadedSnapshot } from './snapshot.js';

type Tx = Prisma.TransactionClient;

export const SCHEDULER_ACTOR = 'scheduler';

/** A row changed since the snapshot was read: the plan is void; re-plan from a fresh snapshot. */
export class StaleSnapshotError extends Error {
  constructor(
    readonly entity: EntityKind,
    readonly id: string,
  ) {
    super(`${entity} ${id} changed after the snapshot was read; re-plan the event from a fresh snapshot`);
    this.name = 'StaleSnapshotError';
  }
}

/** The core asked for something this runtime does not write (e.g. deleting a pool). */
export class UnsupportedTransitionError extends Error {
  constructor(readonly transition: TransitionRecord) {
    super(`The scheduler runtime does not ${transition.op} ${transition.entity} rows (transition ${transition.key}); the API owns that`);
    this.name = 'UnsupportedTransitionError';
  }
}

/** An operation committed by this plan, to be sent to its host once the transaction is over. */
export interface PlannedDispatch {
  operationId: string;
  idempotencyKey: string;
  hostId: string;
  type: Command['type'];
  /** null: a name the agent needs is unknown (see agentCommandFor); it stays pending. */
  frame: CommandFrameInput | null;
}

export interface CommitResult {
  /** The plan's operations were already committed (a replayed event): nothing was written. */
  duplicate: boolean;
  transitions: number;
  dispatches: PlannedDispatch[];
}

const SINGULAR: Record<EntityKind, string> = {
  pools: 'pool',
  hosts: 'host',
  vms: 'vm',
  users: 'user',
  jobs: 'job',
  tasks: 'task',
  operations: 'operation',
};

function causeText(a: Action): string {
  return `event:${a.cause.event}#${a.cause.eventId} rule:${a.cause.rule}`;
}

function pick(source: object | undefined, fields: string[]): Record<string, unknown> | undefined {
  if (!source) return undefined;
  const out: Record<string, unknown> = {};
  for (const f of fields) out[f] = (source as Record<string, unknown>)[f];
  return out;
}

type UpdatableKind = Exclude<EntityKind, 'operations'>;

/**
 * Commits `plan` (made from `loaded`) in transaction `tx`. Throws StaleSnapshotError when any
 * row it changes moved on since it was read; the caller rolls back and re-plans. When the
 * plan's operations already exist, the event was handled before: nothing is written.
 * Writes are batched (one statement per kind of change, not per row), so a placement round of
 * thousands of tasks commits in a handful of statements.
 */
export async function commitPlan(tx: Tx, plan: Plan, loaded: LoadedSnapshot, now: Date): Promise<CommitResult> {
  const commands = new Map<string, Command>();
  for (const a of plan.actions) if (a.type !== 'recordTransition' && a.type !== 'markLost' && a.type !== 'reportArrival') commands.set(a.key, a);
  const keys = [...commands.keys()].map(wireKey);
  if ((await countExistingKeys(tx, keys)) > 0) return { duplicate: true, transitions: 0, dispatches: [] };

  // Entities as they stand while the plan is applied, for the audit's "before".
  const current = new Map<string, object>();
  const entityNow = (kind: EntityKind, id: string): object | undefined =>
    current.get(`${kind}:${id}`) ?? (loaded.snapshot[kind] as Record<string, object>)[id];
  // Several transitions of one row in a plan become one versioned write of their merged columns.
  const updates = new Map<UpdatableKind, Map<string, RowUpdate>>();
  const settles: string[] = [];
  const inserts: OperationInsert[] = [];
  const audits: AuditRow[] = [];
  const dispatches: PlannedDispatch[] = [];
  let transitions = 0;

  for (const a of plan.actions) {
    if (a.type === 'markLost') {
      audits.push({ entityType: 'vm', entityId: a.vmId, action: 'vm.lost', actor: SCHEDULER_ACTOR, cause: causeText(a), after: { lastHostId: a.lastHostId, generation: a.generation } });
      continue;
    }
    if (a.type === 'reportArrival') {
      audits.push({
        entityType: 'user',
        entityId: a.userId,
        action: 'prestage.arrival',
        actor: SCHEDULER_ACTOR,
        cause: causeText(a),
        after: { predictedAt: a.predictedAt, actualAt: a.actualAt, desktopWasRunning: a.desktopWasRunning },
      });
      continue;
    }
    if (a.type !== 'recordTransition') continue; // commands become rows through their operation transition
    transitions += 1;

    if (a.entity === 'operations') {
      if (a.op === 'create') {
        const cmd = commands.get(a.id);
        if (!cmd) throw new UnsupportedTransitionError(a);
        const { row, dispatch, companion } = operationRow(cmd, loaded);
        // The source's half of a live migration goes first; it is not the planner's operation.
        if (companion) {
          inserts.push(companion.row);
          dispatches.push(companion.dispatch);
        }
        // Its audit event (operation.planned.<type>, cause and key) is written with the row.
        row.audit = { frameKind: dispatch.frame?.kind ?? null };
        inserts.push(row);
        dispatches.push(dispatch);
      } else if (a.op === 'delete') {
        const key = wireKey(a.id);
        settles.push(key);
        audits.push({ entityType: 'operation', entityId: key, action: 'operation.settled', actor: SCHEDULER_ACTOR, cause: causeText(a) });
      } else throw new UnsupportedTransitionError(a);
      continue;
    }

    if (a.op === 'create') {
      // Jobs and tasks are created by the API before the scheduler hears of them.
      if (loaded.versions[a.entity].has(a.id)) continue;
      throw new UnsupportedTransitionError(a);
    }
    if (a.op === 'delete') throw new UnsupportedTransitionError(a);

    const version = loaded.versions[a.entity].get(a.id);
    if (version === undefined) throw new StaleSnapshotError(a.entity, a.id);
    const data = columnsForUpdate(a.entity, a.id, a.set, { name: loaded.vmNames.get(a.id), now });
    let byId = updates.get(a.entity);
    if (!byId) updates.set(a.entity, (byId = new Map()));
    const pending = byId.get(a.id);
    if (pending) Object.assign(pending.data, data);
    else byId.set(a.id, { id: a.id, version, data });

    const before = entityNow(a.entity, a.id);
    // One spread then plain writes (two spreads in one literal take V8's slow path).
    const merged: Record<string, unknown> = { ...before };
    for (const k in a.set) merged[k] = a.set[k];
    current.set(`${a.entity}:${a.id}`, merged);
    const stateChange = a.from !== undefined && a.to !== undefined && a.from !== a.to;
    audits.push({
      entityType: SINGULAR[a.entity],
      entityId: a.id,
      action: stateChange ? `${SINGULAR[a.entity]}.state.${a.from}->${a.to}` : `${SINGULAR[a.entity]}.update`,
      actor: SCHEDULER_ACTOR,
      cause: causeText(a),
      before: pick(before, Object.keys(a.set)),
      after: a.set,
    });
  }

  for (const [kind, byId] of updates) {
    const missed = await updateVersionedRows(tx, kind, [...byId.values()], now);
    if (missed.length > 0) throw new StaleSnapshotError(kind, missed[0] as string);
  }
  if (settles.length > 0) {
    const { count } = await tx.operation.updateMany({ where: { idempotencyKey: { in: settles }, settledAt: null }, data: { settledAt: now } });
    if (count !== new Set(settles).size) throw new StaleSnapshotError('operations', settles[0] as string);
    // A settled migration's source half is never sent again, answered or not: re-sent later it
    // could move a desktop the planner already kept on its source.
    await tx.operation.updateMany({ where: { idempotencyKey: { in: settles.map(migrateOutKeyOf) }, settledAt: null }, data: { settledAt: now } });
  }
  // Transitions' audit first, then the operations with theirs: within a plan an operation's
  // "planned" event follows the changes it came with.
  await insertAuditEvents(tx, audits);
  await insertOperations(tx, inserts, SCHEDULER_ACTOR);
  return { duplicate: false, transitions, dispatches };
}

type PlannedRow = { row: OperationInsert; dispatch: PlannedDispatch };

function operationRow(cmd: Command, loaded: LoadedSnapshot): PlannedRow & { companion?: PlannedRow } {
  const subject = subjectOfCommand(cmd);
  const agentCommand = agentCommandFor(cmd, loaded.names);
  const idempotencyKey = wireKey(cmd.key);
  const id = randomUUID();
  const out = agentCommand ? migrateOutFor(cmd, loaded.names) : null;
  const companionId = out ? randomUUID() : '';
  const companionKey = out ? migrateOutKeyOf(idempotencyKey) : '';
  const companion: PlannedRow | undefined = out
    ? {
        row: {
          id: companionId,
          idempotencyKey: companionKey,
          hostId: out.hostId,
          vmId: subject.kind === 'vm' ? subject.id : null,
          taskId: null,
          kind: out.command.kind,
          generation: cmd.generation,
          params: out.command.params,
          planned: companionPlanned(idempotencyKey, cmd),
        },
        dispatch: { operationId: companionId, idempotencyKey: companionKey, hostId: out.hostId, type: cmd.type, frame: commandFrameFor(companionKey, companionId, out.command) },
      }
    : undefined;
  return {
    ...(companion ? { companion } : {}),
    row: {
      id,
      idempotencyKey,
      hostId: cmd.hostId,
      vmId: subject.kind === 'vm' ? subject.id : null,
      taskId: subject.kind === 'task' ? subject.id : null,
      kind: agentCommand?.kind ?? cmd.type,
      generation: cmd.generation,
      params: agentCommand?.params ?? {},
      planned: plannedOf(cmd, subject),
    },
    dispatch: {
      operationId: id,
      idempotencyKey,
      hostId: cmd.hostId,
      type: cmd.type,
      frame: agentCommand ? commandFrameFor(idempotencyKey, id, agentCommand) : null,
    },
  };
}
