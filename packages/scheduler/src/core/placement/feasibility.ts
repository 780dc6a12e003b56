import type { BatchJob, ConstraintRule, Host } from '../types.js';

/**
 * Task-level filters on one host that already accepts batch, apart from room: pool, labels,
 * attribute rules. Room is checked against the capacity index (see CapacityIndex.fits).
 */
export function constraintsHoldOn(job: BatchJob, host: Host): boolean {
  if (job.poolId !== null && job.poolId !== host.poolId) return false;
  for (const k in job.constraints.labels) if (host.labels[k] !== job.constraints.labels[k]) return false;
  const rules = job.constraints.rules;
  if (rules) for (const rule of rules) if (!ruleHolds(rule, host)) return false;
  return true;
}

function attributeOf(host: Host, attribute: string): string | undefined {
  if (attribute.startsWith('label.')) return host.labels[attribute.slice('label.'.length)];
  return host.attributes?.[attribute];
}

export function ruleHolds(rule: ConstraintRule, host: Host): boolean {
  const actual = attributeOf(host, rule.attribute);
  const values = rule.value === undefined ? [] : Array.isArray(rule.value) ? rule.value : [rule.value];
  switch (rule.operator) {
    case 'exists':
      return actual !== undefined;
    case 'not_exists':
      return actual === undefined;
    case '==':
    case 'in':
      return actual !== undefined && values.includes(actual);
    case '!=':
    case 'not_in':
      return actual === undefined || !values.includes(actual);
  }
}

/** Pool, label and rule constraints of a job as one string, for shape keys. */
export function constraintKey(job: BatchJob): string {
  const labels = Object.keys(job.constraints.labels)
    .sort()
    .map((k) => `${k}=${job.constraints.labels[k]}`)
    .join(',');
  const rules = job.constraints.rules?.length ? JSON.stringify(job.constraints.rules) : '';
  return `${job.poolId ?? '*'}|${labels}|${rules}`;
}
