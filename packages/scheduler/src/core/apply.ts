import type { Action, EntityKind, Plan, Snapshot } from './types.js';

/**
 * The snapshot after committing a plan's transition records (commands change nothing until
 * their results come back as events). Unchanged entity maps are shared, not copied.
 */
export function applyPlan(snapshot: Snapshot, plan: Plan | Action[]): Snapshot {
  const actions = Array.isArray(plan) ? plan : plan.actions;
  const next: Snapshot = { ...snapshot };
  const copied = new Set<EntityKind>();
  for (const a of actions) {
    if (a.type !== 'recordTransition') continue;
    if (!copied.has(a.entity)) {
      (next as Record<EntityKind, unknown>)[a.entity] = { ...snapshot[a.entity] };
      copied.add(a.entity);
    }
    const table = next[a.entity] as Record<string, unknown>;
    if (a.op === 'delete') delete table[a.id];
    else if (a.op === 'create') table[a.id] = { ...a.set };
    else {
      const prev = table[a.id];
      if (prev === undefined) throw new Error(`Transition ${a.key} updates unknown ${a.entity} ${a.id}; the snapshot is out of date, reload it`);
      table[a.id] = { ...(prev as object), ...a.set };
    }
  }
  return next;
}
