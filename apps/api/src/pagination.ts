import { z } from 'zod';
import { invalidField } from './errors.js';

/** Keyset pagination on (createdAt, id): stable under inserts, no OFFSET scans. */
export interface CreatedAtCursor {
  createdAt: Date;
  id: string;
}

const createdAtCursorSchema = z.object({ t: z.iso.datetime(), i: z.uuid() });

export function encodeCreatedAtCursor(c: CreatedAtCursor): string {
  return Buffer.from(JSON.stringify({ t: c.createdAt.toISOString(), i: c.id })).toString('base64url');
}

export function decodeCreatedAtCursor(cursor: string | undefined): CreatedAtCursor | undefined {
  if (cursor === undefined) return undefined;
  const parsed = createdAtCursorSchema.safeParse(parseJson(cursor));
  if (!parsed.success) throw badCursor();
  return { createdAt: new Date(parsed.data.t), id: parsed.data.i };
}

/** Prisma `where` fragment for "after this cursor" in (createdAt, id) ascending order. */
export function afterCreatedAt(c: CreatedAtCursor | undefined): object {
  if (!c) return {};
  return { OR: [{ createdAt: { gt: c.createdAt } }, { createdAt: c.createdAt, id: { gt: c.id } }] };
}

export const createdAtOrder = [{ createdAt: 'asc' as const }, { id: 'asc' as const }];

/** Cursor over a bigint sequence (audit events, newest first). */
export function encodeSequenceCursor(id: bigint): string {
  return Buffer.from(JSON.stringify({ s: id.toString() })).toString('base64url');
}

export function decodeSequenceCursor(cursor: string | undefined): bigint | undefined {
  if (cursor === undefined) return undefined;
  const parsed = z.object({ s: z.string().regex(/^\d{1,19}$/) }).safeParse(parseJson(cursor));
  if (!parsed.success) throw badCursor();
  return BigInt(parsed.data.s);
}

/** Callers fetch limit + 1 rows; the extra row only says whether there is a next page. */
export function toPage<T, I>(rows: T[], limit: number, present: (row: T) => I, cursorOf: (row: T) => string): { items: I[]; nextCursor: string | null } {
  const more = rows.length > limit;
  const pageRows = more ? rows.slice(0, limit) : rows;
  const last = pageRows[pageRows.length - 1];
  return { items: pageRows.map(present), nextCursor: more && last !== undefined ? cursorOf(last) : null };
}

function parseJson(cursor: string): unknown {
  try {
    return JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
}

function badCursor() {
  return invalidField('query', ['cursor'], 'not a cursor this API issued; start again without it');
}
