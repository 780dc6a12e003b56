/** Human-readable rendering: tables for lists, key/value blocks for single records. Pure. */

export interface Column {
  /** Dotted path into the row, e.g. "policy.timeZone". */
  key: string;
  header?: string;
}

const MAX_CELL = 60;

export function cellText(value: unknown): string {
  if (value === undefined || value === null || value === '') return '-';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (Array.isArray(value) && value.length === 0) return '[]';
  if (Array.isArray(value) && value.every((v) => typeof v !== 'object' || v === null)) return value.map((v) => cellText(v)).join(',');
  return JSON.stringify(value);
}

function truncate(text: string, max: number): string {
  const oneLine = text.replace(/\s*\n\s*/g, ' ');
  return oneLine.length <= max ? oneLine : `${oneLine.slice(0, max - 1)}…`;
}

export function getPath(row: unknown, path: string): unknown {
  let current: unknown = row;
  for (const part of path.split('.')) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}

function headerOf(column: Column): string {
  return (column.header ?? column.key.split('.').pop()!).toUpperCase();
}

/** Left-aligned columns separated by two spaces, header in capitals; "(none)" for no rows. */
export function formatTable(rows: readonly unknown[], columns: readonly Column[]): string {
  if (rows.length === 0) return '(none)';
  const header = columns.map(headerOf);
  const body = rows.map((row) => columns.map((c) => truncate(cellText(getPath(row, c.key)), MAX_CELL)));
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ');
  return [line(header), ...body.map(line)].join('\n');
}

/**
 * The preferred columns that at least one row has; if none of them exist (the API's shape
 * moved on), the first scalar fields of the rows, so a list never prints as an empty table.
 */
export function chooseColumns(rows: readonly unknown[], preferred: readonly Column[], max = 7): Column[] {
  const present = preferred.filter((c) => rows.some((r) => getPath(r, c.key) !== undefined));
  if (present.length > 0 || rows.length === 0) return present.length > 0 ? present : [...preferred];
  const keys: string[] = [];
  for (const row of rows) {
    if (row === null || typeof row !== 'object') continue;
    for (const [key, value] of Object.entries(row)) {
      if (!keys.includes(key) && (value === null || typeof value !== 'object')) keys.push(key);
    }
  }
  return keys.slice(0, max).map((key) => ({ key }));
}

/** One record as "key: value" lines; nested objects indented beneath their key. */
export function formatRecord(record: unknown, indent = ''): string {
  if (record === null || typeof record !== 'object' || Array.isArray(record)) return indent + cellText(record);
  const entries = Object.entries(record as Record<string, unknown>);
  if (entries.length === 0) return `${indent}(empty)`;
  const width = Math.max(...entries.map(([k]) => k.length));
  return entries
    .map(([key, value]) => {
      const isNested = value !== null && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length > 0;
      const isObjectList = Array.isArray(value) && value.some((v) => v !== null && typeof v === 'object');
      if (isNested) return `${indent}${key}:\n${formatRecord(value, `${indent}  `)}`;
      if (isObjectList) {
        const items = (value as unknown[]).map((v) => `${indent}  - ${formatRecord(v, `${indent}    `).trimStart()}`);
        return `${indent}${key}:\n${items.join('\n')}`;
      }
      return `${indent}${`${key}:`.padEnd(width + 1)} ${cellText(value)}`;
    })
    .join('\n');
}

/** "a.b[0].c" from a zod-style issue path (array of segments) or a string. */
export function formatIssuePath(path: unknown): string {
  if (typeof path === 'string') return path;
  if (!Array.isArray(path)) return '(unknown field)';
  if (path.length === 0) return '(whole body)';
  return path.reduce<string>((acc, seg) => (typeof seg === 'number' ? `${acc}[${seg}]` : acc ? `${acc}.${String(seg)}` : String(seg)), '');
}

/** Pulls field-level problems out of the API's `details.issues[]`, whatever extra they carry. */
export function describeIssues(details: unknown): string[] {
  const issues = getPath(details, 'issues');
  if (!Array.isArray(issues)) return [];
  return issues.map((issue) => {
    const path = formatIssuePath(getPath(issue, 'path'));
    const location = getPath(issue, 'location');
    const message = getPath(issue, 'message');
    const where = typeof location === 'string' && location !== 'body' ? `${path} (in ${location})` : path;
    return `${where}: ${typeof message === 'string' ? message : JSON.stringify(issue)}`;
  });
}
