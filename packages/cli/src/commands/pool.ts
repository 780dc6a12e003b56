import { Command } from 'commander';
import type { CliIo } from '../context.js';
import { parseNonNegativeInt } from '../input.js';
import { buildBody, columns, handler, id, listOpts, withBodyOptions, withListOptions } from './shared.js';

export function poolCommand(io: CliIo): Command {
  const pool = new Command('pool').description('pools of PCs and their policy (admin)');

  withBodyOptions(pool.command('create').description('create a pool').option('--name <name>', 'pool name').option('--description <text>', 'free text'))
    .action(handler(io, async (ctx, _args, opts) => {
      const body = buildBody(opts, { name: opts.name, description: opts.description });
      ctx.record(await ctx.client().request('POST', '/api/v1/pools', { body }));
    }));

  withListOptions(pool.command('list').description('list pools'))
    .action(handler(io, (ctx, _args, opts) => ctx.list('/api/v1/pools', {}, listOpts(opts), columns.pool)));

  pool.command('show').argument('<id>', 'pool id').description('show a pool and its policy')
    .action(handler(io, async (ctx, [poolId]) => ctx.record(await ctx.client().request('GET', `/api/v1/pools/${id(poolId!)}`))));

  withBodyOptions(
    pool.command('update').argument('<id>', 'pool id').description('update a pool (fields not given are left as they are)')
      .option('--name <name>', 'new name').option('--description <text>', 'free text')
      .option('--if-version <n>', 'refuse (409) unless the pool is still at this version', parseNonNegativeInt),
  ).action(handler(io, async (ctx, [poolId], opts) => {
    const body = buildBody(opts, { name: opts.name, description: opts.description, version: opts.ifVersion });
    ctx.record(await ctx.client().request('PATCH', `/api/v1/pools/${id(poolId!)}`, { body }));
  }));

  pool.command('delete').argument('<id>', 'pool id').description('delete a pool (refused while hosts or VMs remain)')
    .action(handler(io, async (ctx, [poolId]) => {
      await ctx.client().request('DELETE', `/api/v1/pools/${id(poolId!)}`);
      ctx.done(`deleted pool ${poolId}`, { deleted: poolId });
    }));
  return pool;
}
