import { createPoolSchema, updatePoolSchema } from '@deskpool/protocol';
import { Command } from 'commander';
import type { CliIo } from '../context.js';
import { parsePositiveInt } from '../input.js';
import { validateBody } from '../validate.js';
import { buildBody, columns, handler, id, listOpts, withBodyOptions, withListOptions } from './shared.js';

const POLICY_HELP = `
Policy fields (via --set key=value or --file): timeZone, officeDays (e.g. [1,2,3,4,5]),
officeHoursStart, officeHoursEnd, nightWindowStart, nightWindowEnd (HH:MM), idleThresholdMinutes,
batchAllowed, maxBatchPercentOwnerPresent, preStaging, powerManagement, storageMode (shared|local),
checkpointGraceSeconds.`;

export function poolCommand(io: CliIo): Command {
  const pool = new Command('pool').description('pools of PCs and their policy (admin)');
  const fields = (opts: Record<string, unknown>) => ({ name: opts.name, description: opts.description, timeZone: opts.timeZone, idleThresholdMinutes: opts.idleMinutes });
  const policyFlags = (command: Command): Command =>
    withBodyOptions(
      command
        .option('--description <text>', 'free text')
        .option('--time-zone <tz>', 'IANA time zone of the office, e.g. Europe/Berlin')
        .option('--idle-minutes <n>', 'owner idle this long → desktop may be suspended', parsePositiveInt),
    ).addHelpText('after', POLICY_HELP);

  policyFlags(pool.command('create').description('create a pool').option('--name <name>', 'pool name (letters, digits, . _ -)'))
    .action(handler(io, async (ctx, _args, opts) => {
      const body = buildBody(opts, fields(opts));
      validateBody(createPoolSchema, body, 'pool');
      ctx.record(await ctx.client().request('POST', '/api/v1/pools', { body }));
    }));

  withListOptions(pool.command('list').description('list pools'))
    .action(handler(io, (ctx, _args, opts) => ctx.list('/api/v1/pools', {}, listOpts(opts), columns.pool)));

  pool.command('show').argument('<id>', 'pool id').description('show a pool and its policy')
    .action(handler(io, async (ctx, [poolId]) => ctx.record(await ctx.client().request('GET', `/api/v1/pools/${id(poolId!)}`))));

  policyFlags(
    pool.command('update').argument('<id>', 'pool id').description('update a pool (fields not given are left as they are)')
      .option('--name <name>', 'new name')
      .option('--if-version <n>', 'refuse (409) unless the pool is still at this version', parsePositiveInt),
  ).action(handler(io, async (ctx, [poolId], opts) => {
    const body = buildBody(opts, { ...fields(opts), version: opts.ifVersion });
    validateBody(updatePoolSchema, body, 'pool update');
    ctx.record(await ctx.client().request('PATCH', `/api/v1/pools/${id(poolId!)}`, { body }));
  }));

  pool.command('delete').argument('<id>', 'pool id').description('delete a pool (refused while hosts or VMs remain)')
    .action(handler(io, async (ctx, [poolId]) => {
      await ctx.client().request('DELETE', `/api/v1/pools/${id(poolId!)}`);
      ctx.done(`deleted pool ${poolId}`, { deleted: poolId });
    }));
  return pool;
}
