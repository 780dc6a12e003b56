import { statSync, writeFileSync } from 'node:fs';
import { JOB_STATES, jobSpecSchema } from '@deskpool/protocol';
import { Command, Option } from 'commander';
import type { CliIo } from '../context.js';
import { UsageError } from '../errors.js';
import { formatRecord, formatTable } from '../format.js';
import { parseNonNegativeInt, readDocument } from '../input.js';
import { validateBody } from '../validate.js';
import { columns, handler, id, listOpts, withListOptions } from './shared.js';

const TASK_COLUMNS = [{ key: 'index' }, { key: 'state' }, { key: 'hostId', header: 'host' }, { key: 'attempts' }, { key: 'progress' }, { key: 'exitStatus', header: 'exit' }, { key: 'updatedAt' }];
const RESULT_COLUMNS = [{ key: 'index' }, { key: 'state' }, { key: 'attempts' }, { key: 'exitCode', header: 'exit' }, { key: 'result' }, { key: 'reason' }, { key: 'finishedAt' }];

/** The API refuses bodies over 1 MiB; a spec that large is a mistake, said before sending. */
const MAX_SPEC_FILE_BYTES = 1024 * 1024;

/**
 * Prints streamed text through a line-based stdout: whole lines as they complete, the rest at the
 * end (io.stdout ends every call with a newline).
 */
function linePrinter(io: CliIo): { write(text: string): void; end(): void } {
  let pending = '';
  return {
    write(text) {
      pending += text;
      const cut = pending.lastIndexOf('\n');
      if (cut < 0) return;
      io.stdout(pending.slice(0, cut));
      pending = pending.slice(cut + 1);
    },
    end() {
      if (pending !== '') io.stdout(pending);
      pending = '';
    },
  };
}

export function jobCommand(io: CliIo): Command {
  const job = new Command('job').description('batch jobs');

  job.command('submit').argument('<file>', 'job spec, YAML or JSON (see docs/jobs.md)').description('submit a batch job')
    .action(handler(io, async (ctx, [file]) => {
      const size = (() => {
        try {
          return statSync(file!).size;
        } catch {
          return 0; // readDocument says what is wrong with the path
        }
      })();
      if (size > MAX_SPEC_FILE_BYTES) throw new UsageError(`${file} is ${size} bytes; a job spec may be at most ${MAX_SPEC_FILE_BYTES} bytes (large inputs belong in the job's share, not its spec)`, 'file');
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

  job.command('logs').argument('<id>', 'job id').description("print a task's console output")
    .option('-t, --task <index>', 'task index (0-based)', parseNonNegativeInt, 0)
    .option('-f, --follow', 'keep printing new output until the task ends')
    .action(handler(io, async (ctx, [jobId], opts) => {
      const out = linePrinter(io);
      try {
        await ctx.client().stream(`/api/v1/jobs/${id(jobId!)}/tasks/${opts.task as number}/logs`, { follow: opts.follow === true ? 'true' : undefined }, (text) => out.write(text));
      } finally {
        out.end();
      }
    }));

  job.command('results').argument('<id>', 'job id').description("each task's state, exit code and result, or one task's result")
    .option('-t, --task <index>', "download this task's result (0-based index)", parseNonNegativeInt)
    .option('-o, --output <file>', 'write the result to this file instead of stdout (with --task)')
    .action(handler(io, async (ctx, [jobId], opts) => {
      const base = `/api/v1/jobs/${id(jobId!)}`;
      if (opts.task === undefined) {
        if (opts.output !== undefined) throw new UsageError('--output saves one task\'s result: give --task too', 'output');
        const results = await ctx.client().request<{ tasks: unknown[] }>('GET', `${base}/results`);
        if (ctx.json) return ctx.record(results);
        io.stdout(formatTable(results.tasks, RESULT_COLUMNS));
        return;
      }
      let text = '';
      await ctx.client().stream(`${base}/tasks/${opts.task as number}/result`, {}, (piece) => (text += piece));
      if (typeof opts.output === 'string') {
        try {
          writeFileSync(opts.output, text);
        } catch (e) {
          throw new UsageError(`cannot write ${opts.output}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, 'output');
        }
        io.stderr(`saved the result of task ${opts.task as number} (${Buffer.byteLength(text)} bytes) to ${opts.output}`);
        return;
      }
      io.stdout(text);
    }));

  job.command('cancel').argument('<id>', 'job id').description('cancel a job')
    .action(handler(io, async (ctx, [jobId]) => ctx.record(await ctx.client().request('POST', `/api/v1/jobs/${id(jobId!)}/cancel`, { body: {} }))));
  return job;
}
