import type { Command } from 'commander';
import { Option } from 'commander';
import type { CliIo } from '../context.js';
import { CommandContext } from '../context.js';
import type { Column } from '../format.js';
import { UsageError } from '../errors.js';
import { applyAssignments, collectAssignment, parseLimit, readDocument } from '../input.js';

export type Handler = (ctx: CommandContext, args: string[], opts: Record<string, unknown>) => Promise<void>;

/** Adapts commander's (args..., options, command) call to a handler with a ready context. */
export function handler(io: CliIo, fn: Handler): (...all: unknown[]) => Promise<void> {
  return async (...all: unknown[]) => {
    const command = all[all.length - 1] as Command;
    const opts = all[all.length - 2] as Record<string, unknown>;
    const args = all.slice(0, -2) as string[];
    await fn(new CommandContext(io, command), args, opts);
  };
}

export function withListOptions(command: Command): Command {
  return command
    .option('--limit <n>', 'page size, 1..200 (server default 50)', parseLimit)
    .option('--cursor <cursor>', 'start from this page cursor (printed after a partial list)')
    .option('--all', 'follow every page to the end');
}

export function withBodyOptions(command: Command): Command {
  return command
    .option('-f, --file <file>', 'request body fields from a JSON or YAML file')
    .addOption(new Option('--set <key=value>', 'set a body field (dotted keys nest; JSON values parsed); repeatable').argParser(collectAssignment));
}

/** The request body: the --file document, then explicit flags, then --set assignments on top. */
export function buildBody(opts: Record<string, unknown>, explicit: Record<string, unknown>): Record<string, unknown> {
  const fromFile = typeof opts.file === 'string' ? readDocument(opts.file) : {};
  const defined = Object.fromEntries(Object.entries(explicit).filter(([, v]) => v !== undefined));
  const assignments = (opts.set as ReturnType<typeof collectAssignment> | undefined) ?? [];
  return applyAssignments({ ...fromFile, ...defined }, assignments);
}

/** A resource id for a URL path; the API checks its format and names it if wrong. */
export function id(value: string): string {
  if (value.trim() === '') throw new UsageError('the id argument must not be empty', 'id');
  return encodeURIComponent(value.trim());
}

export function listOpts(opts: Record<string, unknown>): { limit?: number; cursor?: string; all?: boolean } {
  return { limit: opts.limit as number | undefined, cursor: opts.cursor as string | undefined, all: opts.all === true };
}

export const columns = {
  pool: [{ key: 'id' }, { key: 'name' }, { key: 'timeZone' }, { key: 'officeHoursStart', header: 'from' }, { key: 'officeHoursEnd', header: 'to' }, { key: 'batchAllowed', header: 'batch' }, { key: 'version' }],
  host: [{ key: 'id' }, { key: 'name' }, { key: 'poolId', header: 'pool' }, { key: 'state' }, { key: 'presence' }, { key: 'drained' }, { key: 'cores' }, { key: 'memoryMiB' }, { key: 'lastHeartbeatAt', header: 'heartbeat' }],
  enrollmentToken: [{ key: 'id' }, { key: 'poolId', header: 'pool' }, { key: 'note' }, { key: 'expiresAt' }, { key: 'usedAt' }, { key: 'revokedAt' }],
  user: [{ key: 'id' }, { key: 'name' }, { key: 'displayName' }, { key: 'role' }, { key: 'poolId', header: 'pool' }, { key: 'version' }],
  token: [{ key: 'id' }, { key: 'name' }, { key: 'role' }, { key: 'userId', header: 'user' }, { key: 'createdAt' }, { key: 'lastUsedAt' }, { key: 'revokedAt' }],
  vm: [{ key: 'id' }, { key: 'name' }, { key: 'ownerUserId', header: 'owner' }, { key: 'state' }, { key: 'currentHostId', header: 'host' }, { key: 'vcpus' }, { key: 'memoryMiB' }, { key: 'pinned' }],
  job: [{ key: 'id' }, { key: 'name' }, { key: 'state' }, { key: 'priority' }, { key: 'taskCount', header: 'tasks' }, { key: 'submittedBy' }, { key: 'createdAt' }],
  audit: [{ key: 'at' }, { key: 'actor' }, { key: 'action' }, { key: 'entityType' }, { key: 'entityId' }, { key: 'cause' }],
} satisfies Record<string, Column[]>;
