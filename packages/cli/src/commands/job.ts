import { Command } from 'commander';
import type { CliIo } from '../context.js';
import { readDocument } from '../input.js';
import { columns, handler, id, listOpts, withListOptions } from './shared.js';

export function jobCommand(io: CliIo): Command {
  const job = new Command('job').description('batch jobs');

  job.command('submit').argument('<file>', 'job spec, YAML or JSON').description('submit a batch job')
    .action(handler(io, async (ctx, [file]) => {
      const spec = readDocument(file!, 'file');
      ctx.record(await ctx.client().request('POST', '/api/v1/jobs', { body: spec }));
    }));

  withListOptions(job.command('list').description('list jobs (a submitter sees their own)'))
    .action(handler(io, (ctx, _args, opts) => ctx.list('/api/v1/jobs', {}, listOpts(opts), columns.job)));

  job.command('show').argument('<id>', 'job id').description('show a job with its tasks')
    .action(handler(io, async (ctx, [jobId]) => ctx.record(await ctx.client().request('GET', `/api/v1/jobs/${id(jobId!)}`))));

  job.command('cancel').argument('<id>', 'job id').description('cancel a job')
    .action(handler(io, async (ctx, [jobId]) => ctx.record(await ctx.client().request('POST', `/api/v1/jobs/${id(jobId!)}/cancel`))));
  return job;
}
