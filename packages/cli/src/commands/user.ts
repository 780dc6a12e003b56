import { Command } from 'commander';
import type { CliIo } from '../context.js';
import { parseNonNegativeInt } from '../input.js';
import { buildBody, columns, handler, id, listOpts, withBodyOptions, withListOptions } from './shared.js';

export function userCommand(io: CliIo): Command {
  const user = new Command('user').description('people: desktop users and batch submitters (admin)');
  const fields = (opts: Record<string, unknown>): Record<string, unknown> => ({ email: opts.email, name: opts.name, role: opts.role, poolId: opts.pool });

  withBodyOptions(
    user.command('create').description('create a user')
      .option('--email <email>', 'e-mail / login').option('--name <name>', 'display name')
      .option('--role <role>', 'role, e.g. user or submitter').option('--pool <id>', 'pool the user belongs to'),
  ).action(handler(io, async (ctx, _args, opts) => ctx.record(await ctx.client().request('POST', '/api/v1/users', { body: buildBody(opts, fields(opts)) }))));

  withListOptions(user.command('list').description('list users'))
    .action(handler(io, (ctx, _args, opts) => ctx.list('/api/v1/users', {}, listOpts(opts), columns.user)));

  user.command('show').argument('<id>', 'user id').description('show a user')
    .action(handler(io, async (ctx, [userId]) => ctx.record(await ctx.client().request('GET', `/api/v1/users/${id(userId!)}`))));

  withBodyOptions(
    user.command('update').argument('<id>', 'user id').description('update a user (fields not given are left as they are)')
      .option('--email <email>', 'e-mail / login').option('--name <name>', 'display name')
      .option('--role <role>', 'role').option('--pool <id>', 'pool')
      .option('--if-version <n>', 'refuse (409) unless the user is still at this version', parseNonNegativeInt),
  ).action(handler(io, async (ctx, [userId], opts) => {
    const body = buildBody(opts, { ...fields(opts), version: opts.ifVersion });
    ctx.record(await ctx.client().request('PATCH', `/api/v1/users/${id(userId!)}`, { body }));
  }));

  user.command('delete').argument('<id>', 'user id').description('delete a user')
    .action(handler(io, async (ctx, [userId]) => {
      await ctx.client().request('DELETE', `/api/v1/users/${id(userId!)}`);
      ctx.done(`deleted user ${userId}`, { deleted: userId });
    }));
  return user;
}
