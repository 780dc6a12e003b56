import type { FastifyRequest } from 'fastify';
import { invalidField } from './errors.js';

/**
 * PostgreSQL cannot store the NUL character (U+0000) in text or jsonb: a string carrying one
 * would fail deep in a query as a server error. It is refused at the door instead, naming the
 * field. (Found by the fuzz suite.)
 */
export function findNul(value: unknown): (string | number)[] | null {
  // Iterative, with paths as parent links built only for the answer: a deeply nested body costs
  // one visit per value, and cannot overflow the stack.
  type Link = { key: string | number; parent: Link | null };
  const pathOf = (link: Link | null): (string | number)[] => {
    const out: (string | number)[] = [];
    for (let l = link; l; l = l.parent) out.push(l.key);
    return out.reverse();
  };
  const stack: [unknown, Link | null][] = [[value, null]];
  while (stack.length > 0) {
    const [v, at] = stack.pop()!;
    if (typeof v === 'string') {
      if (v.includes('\u0000')) return pathOf(at);
    } else if (Array.isArray(v)) {
      v.forEach((child, i) => stack.push([child, { key: i, parent: at }]));
    } else if (typeof v === 'object' && v !== null) {
      for (const [k, child] of Object.entries(v)) {
        if (k.includes('\u0000')) return pathOf({ key: k, parent: at });
        stack.push([child, { key: k, parent: at }]);
      }
    }
  }
  return null;
}

/** preValidation hook: a 400 naming the field when body, query or path parameters carry a NUL. */
export async function rejectNulCharacters(request: FastifyRequest): Promise<void> {
  for (const [location, value] of [['params', request.params], ['query', request.query], ['body', request.body]] as const) {
    const found = findNul(value);
    // A path thousands deep is cut short: where it starts is enough to find it.
    if (found) throw invalidField(location, found.length > 32 ? [...found.slice(0, 32), '…'] : found, 'must not contain the NUL character (\\u0000)');
  }
}
