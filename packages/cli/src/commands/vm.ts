import { Command } from 'commander';
import type { CliIo } from '../context.js';
import { parsePositiveInt } from '../input.js';
import { buildBody, columns, handler, id, listOpts, withBodyOptions, withListOptions } from './shared.js';

export function vmCommand(io: CliIo): Command {
  const vm = new Command('vm').description('desktop VMs');

  withBodyOptions(
    vm.command('create').description('create a desktop VM for a user (admin)')
      .option('--user <id>', 'owner of the desktop').option('--name <name>', 'VM name')
      .option('--vcpus <n>', 'virtual CPUs', parsePositiveInt).option('--memory-mib <n>', 'memory in MiB', parsePositiveInt)
      .option('--disk-gib <n>', 'disk in GiB', parsePositiveInt).option('--host <id>', 'home host (usually the user\'s own PC)'),
  ).action(handler(io, async (ctx, _args, opts) => {
    const body = buildBody(opts, { userId: opts.user, name: opts.name, vcpus: opts.vcpus, memoryMiB: opts.memoryMib, diskGiB: opts.diskGib, hostId: opts.host });
    ctx.record(await ctx.client().request('POST', '/api/v1/vms', { body }));
  }));

  withListOptions(vm.command('list').description('list desktop VMs (a user sees their own)'))
    .action(handler(io, (ctx, _args, opts) => ctx.list('/api/v1/vms', {}, listOpts(opts), columns.vm)));

  vm.command('show').argument('<id>', 'VM id').description('show a desktop VM')
    .action(handler(io, async (ctx, [vmId]) => ctx.record(await ctx.client().request('GET', `/api/v1/vms/${id(vmId!)}`))));

  vm.command('pin').argument('<id>', 'VM id').description('keep this desktop running tonight')
    .action(handler(io, async (ctx, [vmId]) => ctx.record(await ctx.client().request('POST', `/api/v1/vms/${id(vmId!)}/pin`))));

  vm.command('unpin').argument('<id>', 'VM id').description('let this desktop be suspended when idle again')
    .action(handler(io, async (ctx, [vmId]) => ctx.record(await ctx.client().request('POST', `/api/v1/vms/${id(vmId!)}/unpin`))));
  return vm;
}
