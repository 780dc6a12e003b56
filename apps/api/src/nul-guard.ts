import type { FastifyRequest } from 'fastify';
import { invalidField } from './errors.js';

/**
 * PostgreSQL cannot store the NUL character (U+0000) in text or jsonb: a string carrying one
 * would fail deep in a query as a server error. It is refused at the door instead, naming the
 * field. (Found by the fuzz suite.)
 */
export function findNul(value: unknown): (string | number)[] | null {
  // Iterative: a deeply nested body must not overflow the stack here.
  const stack: [unknown, (string | number)[]][] = [[value, []]];
  while (stack.length > 0) {
    const [v, at] = stack.pop()!;
    if (typeof v === 'string') {
      if (v.includes('\u0000')) return at;
    } else if (Array.isArray(v)) {
      v.forEach((child, i) => stack.push([child, [...at, i]]));
    } else if (typeof v === 'object' && v !== null) {
      for (const [k, child] of Object.entries(v)) {
        if (k.includes('\u0000')) return [...at, k];
        stack.push([child, [...at, k]]);
      }
    }
  }
  return null;
}

/** preValidation hook: a 400 naming the field when body, query or path parameters carry a NUL. */
export async function rejectNulCharacters(request: FastifyRequest): Promise<void> {
  for (const [location, value] of [['params', request.params], ['query', request.query], ['body', request.body]] as const) {
    const found = findNul(value);
    if (found) throw invalidField(location, found, 'must not contain the NUL character (\\u0000)');
  }
}
