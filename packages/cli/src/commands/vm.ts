import { createVmSchema, pinVmSchema, updateVmSchema, VM_STATES } from '@deskpool/protocol';
import { Command, Option } from 'commander';
import type { CliIo } from '../context.js';
import { parsePositiveInt, parseTimestamp } from '../input.js';
import { validateBody } from '../validate.js';
import { buildBody, columns, handler, id, listOpts, withBodyOptions, withListOptions } from './shared.js';

export function vmCommand(io: CliIo): Command {
  const vm = new Command('vm').description('desktop VMs');

  withBodyOptions(
    vm.command('create').description('create a desktop VM for a user (admin)')
      .option('--name <name>', 'VM (libvirt domain) name').option('--owner <id>', 'user who owns the desktop')
      .option('--pool <id>', 'pool (default: the owner\'s)')
      .option('--vcpus <n>', 'virtual CPUs', parsePositiveInt).option('--memory-mib <n>', 'memory in MiB', parsePositiveInt)
      .option('--max-vcpus <n>', 'hot-plug ceiling for vCPUs', parsePositiveInt).option('--max-memory-mib <n>', 'hot-plug ceiling for memory', parsePositiveInt)
      .option('--disk-gib <n>', 'disk size in GiB', parsePositiveInt).option('--disk-location <path>', 'where the disk image lives'),
  ).action(handler(io, async (ctx, _args, opts) => {
    const body = buildBody(opts, {
      name: opts.name, ownerUserId: opts.owner, poolId: opts.pool, vcpus: opts.vcpus, memoryMiB: opts.memoryMib,
      maxVcpus: opts.maxVcpus, maxMemoryMiB: opts.maxMemoryMib, diskGiB: opts.diskGib, diskLocation: opts.diskLocation,
    });
    validateBody(createVmSchema, body, 'VM');
    ctx.record(await ctx.client().request('POST', '/api/v1/vms', { body }));
  }));

  withListOptions(
    vm.command('list').description('list desktop VMs (a user sees their own)')
      .option('--owner <id>', 'only this user\'s').option('--pool <id>', 'only this pool')
      .addOption(new Option('--state <state>', 'only VMs in this state').choices(VM_STATES)),
  ).action(handler(io, (ctx, _args, opts) =>
    ctx.list('/api/v1/vms', { ownerUserId: opts.owner as string | undefined, poolId: opts.pool as string | undefined, state: opts.state as string | undefined }, listOpts(opts), columns.vm)));

  vm.command('show').argument('<id>', 'VM id').description('show a desktop VM')
    .action(handler(io, async (ctx, [vmId]) => ctx.record(await ctx.client().request('GET', `/api/v1/vms/${id(vmId!)}`))));

  withBodyOptions(
    vm.command('update').argument('<id>', 'VM id').description('resize a desktop VM (admin)')
      .option('--vcpus <n>', 'virtual CPUs', parsePositiveInt).option('--memory-mib <n>', 'memory in MiB', parsePositiveInt)
      .option('--max-vcpus <n>', 'hot-plug ceiling for vCPUs', parsePositiveInt).option('--max-memory-mib <n>', 'hot-plug ceiling for memory', parsePositiveInt)
      .option('--if-version <n>', 'refuse (409) unless the VM is still at this version', parsePositiveInt),
  ).action(handler(io, async (ctx, [vmId], opts) => {
    const body = buildBody(opts, { vcpus: opts.vcpus, memoryMiB: opts.memoryMib, maxVcpus: opts.maxVcpus, maxMemoryMiB: opts.maxMemoryMib, version: opts.ifVersion });
    validateBody(updateVmSchema, body, 'VM update');
    ctx.record(await ctx.client().request('PATCH', `/api/v1/vms/${id(vmId!)}`, { body }));
  }));

  vm.command('delete').argument('<id>', 'VM id').description('delete a desktop VM (admin)')
    .action(handler(io, async (ctx, [vmId]) => {
      await ctx.client().request('DELETE', `/api/v1/vms/${id(vmId!)}`);
      ctx.done(`deleted VM ${vmId}`, { deleted: vmId });
    }));

  vm.command('pin').argument('<id>', 'VM id').description('keep this desktop running tonight')
    .option('--until <time>', 'keep it running until then (ISO 8601); default: until unpinned', parseTimestamp)
    .action(handler(io, async (ctx, [vmId], opts) => {
      const body = opts.until === undefined ? {} : { until: opts.until };
      validateBody(pinVmSchema, body, 'pin');
      ctx.record(await ctx.client().request('POST', `/api/v1/vms/${id(vmId!)}/pin`, { body }));
    }));

  vm.command('unpin').argument('<id>', 'VM id').description('let this desktop be suspended when idle again')
    .action(handler(io, async (ctx, [vmId]) => ctx.record(await ctx.client().request('POST', `/api/v1/vms/${id(vmId!)}/unpin`, { body: {} }))));
  return vm;
}
