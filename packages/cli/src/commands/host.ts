import { createEnrollmentTokenSchema, HOST_ONLINE_STATES, updateHostSchema } from '@deskpool/protocol';
import { Command, Option } from 'commander';
import type { CliIo } from '../context.js';
import { collectString, parsePositiveInt } from '../input.js';
import { validateBody } from '../validate.js';
import { buildBody, columns, handler, id, listOpts, withBodyOptions, withListOptions } from './shared.js';

export function hostCommand(io: CliIo): Command {
  const host = new Command('host').description('enrolled PCs (admin)');

  withListOptions(host.command('list').description('list hosts').option('--pool <id>', 'only this pool').addOption(new Option('--state <state>', 'only hosts in this state').choices(HOST_ONLINE_STATES)))
    .action(handler(io, (ctx, _args, opts) => ctx.list('/api/v1/hosts', { poolId: opts.pool as string | undefined, state: opts.state as string | undefined }, listOpts(opts), columns.host)));

  host.command('show').argument('<id>', 'host id').description('show a host')
    .action(handler(io, async (ctx, [hostId]) => ctx.record(await ctx.client().request('GET', `/api/v1/hosts/${id(hostId!)}`))));

  withBodyOptions(
    host.command('update').argument('<id>', 'host id').description('move a host to another pool, set its owner or its labels')
      .option('--pool <id>', 'pool the host belongs to')
      .option('--owner <id>', 'user whose own PC this is')
      .option('--no-owner', 'the PC has no owner (shared desk)')
      .option('--label <label>', 'a label for placement (repeat for several; replaces the current set)', collectString)
      .option('--if-version <n>', 'refuse (409) unless the host is still at this version', parsePositiveInt),
  ).action(handler(io, async (ctx, [hostId], opts) => {
    const owner = opts.owner === false ? null : opts.owner;
    const body = buildBody(opts, { poolId: opts.pool, ownerUserId: owner, labels: opts.label, version: opts.ifVersion });
    validateBody(updateHostSchema, body, 'host update');
    ctx.record(await ctx.client().request('PATCH', `/api/v1/hosts/${id(hostId!)}`, { body }));
  }));

  host.command('drain').argument('<id>', 'host id').description('stop placing batch work on a host')
    .action(handler(io, async (ctx, [hostId]) => ctx.record(await ctx.client().request('POST', `/api/v1/hosts/${id(hostId!)}/drain`, { body: {} }))));

  host.command('undrain').argument('<id>', 'host id').description('resume placing batch work on a host')
    .action(handler(io, async (ctx, [hostId]) => ctx.record(await ctx.client().request('POST', `/api/v1/hosts/${id(hostId!)}/undrain`, { body: {} }))));

  host.command('remove').argument('<id>', 'host id').description('remove a host and revoke its credential')
    .action(handler(io, async (ctx, [hostId]) => {
      await ctx.client().request('DELETE', `/api/v1/hosts/${id(hostId!)}`);
      ctx.done(`removed host ${hostId}; its credential is revoked`, { removed: hostId });
    }));

  host.command('enroll-token').description('create a one-time token an agent uses to enroll its PC into a pool')
    .requiredOption('--pool <id>', 'pool the PC joins')
    .option('--ttl <seconds>', 'how long the token stays valid', parsePositiveInt)
    .option('--note <text>', 'why/for which PC')
    .action(handler(io, async (ctx, _args, opts) => {
      const body = Object.fromEntries(Object.entries({ poolId: opts.pool, ttlSeconds: opts.ttl, note: opts.note }).filter(([, v]) => v !== undefined));
      validateBody(createEnrollmentTokenSchema, body, 'enrollment token');
      const created = await ctx.client().request('POST', '/api/v1/enrollment-tokens', { body });
      ctx.record(created, 'the token is shown once and works once: on the PC, run `deskpool-agent enroll --server URL --token TOKEN`');
    }));

  withListOptions(host.command('enroll-tokens').description('list enrollment tokens (no secrets)'))
    .action(handler(io, (ctx, _args, opts) => ctx.list('/api/v1/enrollment-tokens', {}, listOpts(opts), columns.enrollmentToken)));

  host.command('revoke-enroll-token').argument('<id>', 'enrollment token id').description('revoke an unused enrollment token')
    .action(handler(io, async (ctx, [tokenId]) => {
      await ctx.client().request('DELETE', `/api/v1/enrollment-tokens/${id(tokenId!)}`);
      ctx.done(`revoked enrollment token ${tokenId}`, { revoked: tokenId });
    }));
  return host;
}
