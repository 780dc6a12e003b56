import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { InvalidArgumentError } from 'commander';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { UsageError } from './errors.js';

/** Reads a JSON or YAML document (chosen by extension; YAML otherwise, which also accepts JSON). */
export function readDocument(path: string, field = 'file'): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, field);
  }
  let doc: unknown;
  try {
    doc = extname(path).toLowerCase() === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new UsageError(`${path} is not valid ${extname(path).toLowerCase() === '.json' ? 'JSON' : 'YAML'}: ${(e as Error).message.split('\n')[0]}`, field);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new UsageError(`${path} must hold one object (a mapping of fields), not ${Array.isArray(doc) ? 'a list' : typeof doc}`, field);
  }
  return doc as Record<string, unknown>;
}

/**
 * `--set a.b=value`: the value is taken as JSON when it parses (numbers, true, [..], {..}),
 * otherwise as a plain string, so `--set name=lab` and `--set maxCores=8` both do what they say.
 */
export function parseAssignment(text: string): { path: string[]; value: unknown } {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError(`expected key=value, got "${text}"`);
  const path = text.slice(0, eq).split('.');
  if (path.some((p) => p === '' || p === '__proto__' || p === 'constructor' || p === 'prototype')) {
    throw new InvalidArgumentError(`bad key "${text.slice(0, eq)}"`);
  }
  const raw = text.slice(eq + 1);
  let value: unknown = raw;
  try {
    value = JSON.parse(raw);
  } catch {
    value = raw;
  }
  return { path, value };
}

export function collectAssignment(text: string, previous: Array<{ path: string[]; value: unknown }> = []): Array<{ path: string[]; value: unknown }> {
  return [...previous, parseAssignment(text)];
}

export function applyAssignments(target: Record<string, unknown>, assignments: ReadonlyArray<{ path: string[]; value: unknown }>): Record<string, unknown> {
  const result = structuredClone(target);
  for (const { path, value } of assignments) {
    let node: Record<string, unknown> = result;
    for (const key of path.slice(0, -1)) {
      const next = node[key];
      if (next === null || typeof next !== 'object' || Array.isArray(next)) node[key] = {};
      node = node[key] as Record<string, unknown>;
    }
    node[path[path.length - 1]!] = value;
  }
  return result;
}

/** A commander argument parser backed by a zod schema, so bad flags are named and exit 2. */
export function zodParser<T>(schema: z.ZodType<T>): (value: string) => T {
  return (value: string) => {
    const parsed = schema.safeParse(value);
    if (!parsed.success) throw new InvalidArgumentError(parsed.error.issues[0]!.message);
    return parsed.data;
  };
}

export const parseLimit = zodParser(z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').max(200, 'must be at most 200'));
export const parsePositiveInt = zodParser(z.coerce.number({ error: 'must be a number' }).int('must be a whole number').positive('must be positive'));
export const parseNonNegativeInt = zodParser(z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(0, 'must not be negative'));
export const parseTimestamp = zodParser(
  z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'must be a date/time such as 2026-11-26 or 2026-11-26T08:00:00Z').transform((s) => new Date(s).toISOString()),
);

/** Repeatable string flag (`--label a --label b`). */
export function collectString(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}
