import { listAuditQuerySchema } from '@deskpool/protocol';
import { Command } from 'commander';
import type { CliIo } from '../context.js';
import { ServerUnhealthyError, UsageError } from '../errors.js';
import { formatRecord } from '../format.js';
import { parseTimestamp } from '../input.js';
import { validateBody } from '../validate.js';
import { columns, handler, listOpts, withListOptions } from './shared.js';

export function auditCommand(io: CliIo): Command {
  return withListOptions(
    new Command('audit').description('the audit trail (admin)')
      .option('--entity-type <type>', 'e.g. pool, host, vm, job').option('--entity-id <id>', 'one entity')
      .option('--actor <actor>', 'who did it').option('--action <action>', 'what was done')
      .option('--since <time>', 'from this time (ISO 8601)', parseTimestamp).option('--until <time>', 'up to this time (ISO 8601)', parseTimestamp),
  ).action(handler(io, (ctx, _args, opts) => {
    const query = {
      entityType: opts.entityType as string | undefined, entityId: opts.entityId as string | undefined,
      actor: opts.actor as string | undefined, action: opts.action as string | undefined,
      since: opts.since as string | undefined, until: opts.until as string | undefined,
    };
    validateBody(listAuditQuerySchema, query, 'audit filter');
    return ctx.list('/api/v1/audit', query, listOpts(opts), columns.audit);
  }));
}

export function meCommand(io: CliIo): Command {
  return new Command('me').description('who the current token belongs to')
    .action(handler(io, async (ctx) => ctx.record(await ctx.client().request('GET', '/api/v1/me'))));
}

export function healthCommand(io: CliIo): Command {
  return new Command('health').description('is the server up, and are its database and Redis reachable? (exit 1 if not)')
    .action(handler(io, async (ctx) => {
      const client = ctx.anonymousClient();
      const health = await client.send('GET', '/healthz');
      const ready = await client.send('GET', '/readyz');
      const result = { url: client.baseUrl, healthy: health.status === 200, ready: ready.status === 200, healthz: health.body, readyz: ready.body };
      if (ctx.json) io.stdout(JSON.stringify(result, null, 2));
      else io.stdout(formatRecord({ url: result.url, healthy: result.healthy, ready: result.ready, healthz: health.body, readyz: ready.body }));
      if (!result.healthy || !result.ready) throw new ServerUnhealthyError(client.baseUrl, result.healthy ? 'not ready (/readyz)' : 'unhealthy (/healthz)');
    }));
}

export function loginCommand(io: CliIo): Command {
  return new Command('login').description('save server URL and token in the config file (mode 0600), after checking them with GET /api/v1/me')
    .option('--no-verify', 'save without asking the server')
    .action(handler(io, async (ctx, _args, opts) => {
      const config = ctx.config({ allowMissingFile: true });
      if (ctx.options.url === undefined && ctx.options.token === undefined) {
        throw new UsageError('login needs --url and/or --token to save', 'url');
      }
      const url = config.url?.value;
      const token = config.token?.value;
      if (!url) throw new UsageError('login needs --url (or an existing URL in DESKPOOL_URL or the config file)', 'url');
      let me: unknown = undefined;
      if (opts.verify !== false && token) {
        me = await ctx.client().request('GET', '/api/v1/me');
      }
      try {
        io.writeConfig(config.configPath, { url, ...(token ? { token } : {}) });
      } catch (e) {
        throw new UsageError(`cannot write ${config.configPath}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}; choose another path with --config`, 'config');
      }
      ctx.done(`saved ${config.configPath}${me ? `; signed in as ${describeMe(me)}` : ''}`, { configPath: config.configPath, me: me ?? null });
    }));
}

function describeMe(me: unknown): string {
  if (me && typeof me === 'object') {
    const m = me as Record<string, unknown>;
    const user = m.user as Record<string, unknown> | null | undefined;
    const who = user?.name ?? m.actor ?? m.tokenName;
    if (who !== undefined) return `${String(who)}${m.role ? ` (${String(m.role)})` : ''}`;
  }
  return JSON.stringify(me);
}
