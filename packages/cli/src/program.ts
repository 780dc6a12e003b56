import { Command, CommanderError, Option } from 'commander';
import { auditCommand, healthCommand, loginCommand, meCommand } from './commands/misc.js';
import { hostCommand } from './commands/host.js';
import { jobCommand } from './commands/job.js';
import { poolCommand } from './commands/pool.js';
import { tokenCommand } from './commands/token.js';
import { userCommand } from './commands/user.js';
import { vmCommand } from './commands/vm.js';
import type { CliIo } from './context.js';
import { ApiRequestError, CliError, ExitCode, ServerUnreachableError, UsageError } from './errors.js';
import { describeIssues } from './format.js';
import { parsePositiveInt } from './input.js';

const EXIT_CODES_HELP = `
Exit codes: 0 ok, 1 the API refused the request (or the server is unhealthy), 2 bad usage or
configuration (nothing sent), 3 cannot reach the server.
Server and token come from --url/--token, else DESKPOOL_URL/DESKPOOL_TOKEN, else the config file
(--config, DESKPOOL_CONFIG, or ~/.config/deskpool/config.json; written by \`deskpool login\`).`;

export function buildProgram(io: CliIo): Command {
  const program = new Command('deskpool')
    .description('Command-line client for the deskpool control plane.')
    .version('0.1.0')
    .option('--url <url>', 'server URL, e.g. http://deskpool.example:8080')
    .option('--token <token>', 'API token')
    .option('--config <file>', 'config file to read (default ~/.config/deskpool/config.json)')
    .option('--json', 'print JSON instead of tables')
    .addOption(new Option('--timeout <seconds>', 'per-request timeout').default(30).argParser(parsePositiveInt))
    .addHelpText('after', EXIT_CODES_HELP)
    .showHelpAfterError('(add --help for usage)');

  for (const make of [poolCommand, hostCommand, userCommand, tokenCommand, vmCommand, jobCommand, auditCommand, meCommand, healthCommand, loginCommand]) {
    program.addCommand(make(io));
  }

  // Usage errors anywhere in the tree exit 2 through runCli instead of process.exit.
  const configure = (command: Command): void => {
    command.exitOverride().configureOutput({ writeOut: (s) => io.stdout(s.replace(/\n$/, '')), writeErr: (s) => io.stderr(s.replace(/\n$/, '')) });
    command.commands.forEach(configure);
  };
  configure(program);
  return program;
}

/** Runs one CLI invocation and returns its exit code; never calls process.exit itself. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const program = buildProgram(io);
  const json = argv.includes('--json');
  try {
    await program.parseAsync(argv, { from: 'user' });
    return ExitCode.ok;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and version are "errors" to commander; everything else it rejects is usage.
      return e.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    }
    if (e instanceof CliError) {
      io.stderr(json ? JSON.stringify(errorJson(e), null, 2) : renderError(e));
      return e.exitCode;
    }
    throw e;
  }
}

export function renderError(e: CliError): string {
  if (e instanceof ApiRequestError) {
    const lines = [`error: ${e.method} ${e.path} refused: ${e.body.code} (HTTP ${e.status}): ${e.body.message}`];
    for (const issue of describeIssues(e.body.details)) lines.push(`  - ${issue}`);
    if (e.status === 401) lines.push('  check the token (--token, DESKPOOL_TOKEN or `deskpool login`)');
    if (e.status === 403) lines.push('  this token\'s role may not do that; use an admin token or the owner\'s token');
    return lines.join('\n');
  }
  return `error: ${e.message}`;
}

function errorJson(e: CliError): unknown {
  if (e instanceof ApiRequestError) return { error: e.body, status: e.status, exitCode: e.exitCode };
  const code = e instanceof UsageError ? 'USAGE' : e instanceof ServerUnreachableError ? 'UNREACHABLE' : 'UNHEALTHY';
  return { error: { code, message: e.message, details: e instanceof UsageError && e.field ? { field: e.field } : undefined }, exitCode: e.exitCode };
}
