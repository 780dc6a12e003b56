import { createUserSchema, updateUserSchema, USER_ROLES } from '@deskpool/protocol';
import { Command, Option } from 'commander';
import type { CliIo } from '../context.js';
import { parsePositiveInt } from '../input.js';
import { validateBody } from '../validate.js';
import { buildBody, columns, handler, id, listOpts, withBodyOptions, withListOptions } from './shared.js';

export function userCommand(io: CliIo): Command {
  const user = new Command('user').description('people: desktop users and batch submitters (admin)');
  const fields = (opts: Record<string, unknown>) => ({ displayName: opts.displayName, role: opts.role, poolId: opts.pool, homeHostId: opts.homeHost });
  const userFlags = (command: Command): Command =>
    withBodyOptions(
      command
        .option('--display-name <text>', 'full name')
        .addOption(new Option('--role <role>', 'what the user does').choices(USER_ROLES))
        .option('--pool <id>', 'pool the user belongs to')
        .option('--home-host <id>', 'the user\'s own PC'),
    );

  userFlags(user.command('create').description('create a user').option('--name <name>', 'login name (letters, digits, . _ -)'))
    .action(handler(io, async (ctx, _args, opts) => {
      const body = buildBody(opts, { name: opts.name, ...fields(opts) });
      validateBody(createUserSchema, body, 'user');
      ctx.record(await ctx.client().request('POST', '/api/v1/users', { body }));
    }));

  withListOptions(user.command('list').description('list users'))
    .action(handler(io, (ctx, _args, opts) => ctx.list('/api/v1/users', {}, listOpts(opts), columns.user)));

  user.command('show').argument('<id>', 'user id').description('show a user')
    .action(handler(io, async (ctx, [userId]) => ctx.record(await ctx.client().request('GET', `/api/v1/users/${id(userId!)}`))));

  userFlags(
    user.command('update').argument('<id>', 'user id').description('update a user (fields not given are left as they are)')
      .option('--if-version <n>', 'refuse (409) unless the user is still at this version', parsePositiveInt),
  ).action(handler(io, async (ctx, [userId], opts) => {
    const body = buildBody(opts, { ...fields(opts), version: opts.ifVersion });
    validateBody(updateUserSchema, body, 'user update');
    ctx.record(await ctx.client().request('PATCH', `/api/v1/users/${id(userId!)}`, { body }));
  }));

  user.command('delete').argument('<id>', 'user id').description('delete a user')
    .action(handler(io, async (ctx, [userId]) => {
      await ctx.client().request('DELETE', `/api/v1/users/${id(userId!)}`);
      ctx.done(`deleted user ${userId}`, { deleted: userId });
    }));
  return user;
}
