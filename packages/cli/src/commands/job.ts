import { JOB_STATES, jobSpecSchema } from '@deskpool/protocol';
import { Command, Option } from 'commander';
import type { CliIo } from '../context.js';
import { formatRecord, formatTable } from '../format.js';
import { readDocument } from '../input.js';
import { validateBody } from '../validate.js';
import { columns, handler, id, listOpts, withListOptions } from './shared.js';

const TASK_COLUMNS = [{ key: 'index' }, { key: 'state' }, { key: 'hostId', header: 'host' }, { key: 'attempts' }, { key: 'progress' }, { key: 'exitStatus', header: 'exit' }, { key: 'updatedAt' }];

export function jobCommand(io: CliIo): Command {
  const job = new Command('job').description('batch jobs');

  job.command('submit').argument('<file>', 'job spec, YAML or JSON (see packages/protocol/src/job-spec.ts)').description('submit a batch job')
    .action(handler(io, async (ctx, [file]) => {
      const spec = readDocument(file!, 'file');
      validateBody(jobSpecSchema, spec, `job spec ${file}`);
      ctx.record(await ctx.client().request('POST', '/api/v1/jobs', { body: spec }));
    }));

  withListOptions(
    job.command('list').description('list jobs (a submitter sees their own)')
      .addOption(new Option('--state <state>', 'only jobs in this state').choices(JOB_STATES)),
  ).action(handler(io, (ctx, _args, opts) => ctx.list('/api/v1/jobs', { state: opts.state as string | undefined }, listOpts(opts), columns.job)));

  job.command('show').argument('<id>', 'job id').description('show a job with its tasks')
    .action(handler(io, async (ctx, [jobId]) => {
      const shown = await ctx.client().request<Record<string, unknown>>('GET', `/api/v1/jobs/${id(jobId!)}`);
      if (ctx.json || !Array.isArray(shown.tasks)) return ctx.record(shown);
      const { tasks, ...rest } = shown;
      io.stdout(`${formatRecord(rest)}\n\ntasks:\n${formatTable(tasks as unknown[], TASK_COLUMNS)}`);
    }));

  job.command('cancel').argument('<id>', 'job id').description('cancel a job')
    .action(handler(io, async (ctx, [jobId]) => ctx.record(await ctx.client().request('POST', `/api/v1/jobs/${id(jobId!)}/cancel`, { body: {} }))));
  return job;
}
