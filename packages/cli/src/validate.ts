import type { z } from 'zod';
import { UsageError } from './errors.js';
import { formatIssuePath } from './format.js';

/**
 * Checks a request body against the API's own schema (from @deskpool/protocol) before sending,
 * so a mistake is reported with its field and nothing reaches the server. The body is sent as
 * the user wrote it: defaults are the server's business.
 */
export function validateBody(schema: z.ZodType, body: unknown, what: string): void {
  const parsed = schema.safeParse(body);
  if (parsed.success) return;
  const lines = parsed.error.issues.map((issue) => `  - ${formatIssuePath(issue.path)}: ${issue.message}`);
  const first = parsed.error.issues[0];
  throw new UsageError(`invalid ${what}:\n${lines.join('\n')}`, first ? formatIssuePath(first.path) : undefined);
}
