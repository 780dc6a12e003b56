import { createApiTokenSchema, USER_ROLES } from '@deskpool/protocol';
import { Command, Option } from 'commander';
import type { CliIo } from '../context.js';
import { validateBody } from '../validate.js';
import { columns, handler, id, listOpts, withListOptions } from './shared.js';

export function tokenCommand(io: CliIo): Command {
  const token = new Command('token').description('API tokens (admin)');

  token.command('create').description('create an API token (the secret is shown once)')
    .requiredOption('--name <name>', 'what the token is for')
    .addOption(new Option('--role <role>', 'what the token may do').choices(USER_ROLES).makeOptionMandatory())
    .option('--user <id>', 'user the token acts for (needed for user and submitter tokens)')
    .action(handler(io, async (ctx, _args, opts) => {
      const body = Object.fromEntries(Object.entries({ name: opts.name, role: opts.role, userId: opts.user }).filter(([, v]) => v !== undefined));
      validateBody(createApiTokenSchema, body, 'API token');
      ctx.record(await ctx.client().request('POST', '/api/v1/api-tokens', { body }), 'the token is shown once: store it now');
    }));

  withListOptions(token.command('list').description('list API tokens (no secrets)'))
    .action(handler(io, (ctx, _args, opts) => ctx.list('/api/v1/api-tokens', {}, listOpts(opts), columns.token)));

  token.command('revoke').argument('<id>', 'token id').description('revoke an API token')
    .action(handler(io, async (ctx, [tokenId]) => {
      await ctx.client().request('DELETE', `/api/v1/api-tokens/${id(tokenId!)}`);
      ctx.done(`revoked token ${tokenId}`, { revoked: tokenId });
    }));
  return token;
}
