/**
 * Exit codes are part of the CLI's contract with scripts (documented in packages/cli/README.md).
 */
export const ExitCode = {
  ok: 0,
  /** The API answered and refused (4xx/5xx). */
  apiRefused: 1,
  /** Bad flags, arguments, input files or configuration: nothing was sent. */
  usage: 2,
  /** The server could not be reached at all. */
  unreachable: 3,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** Base of every error the CLI reports on purpose; anything else is a bug. */
export abstract class CliError extends Error {
  abstract readonly exitCode: ExitCode;
}

/** A flag, argument, input file or config value is wrong; `field` names which one. */
export class UsageError extends CliError {
  readonly exitCode = ExitCode.usage;
  constructor(
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface ApiErrorBody {
  code: string;
  message: string;
  details?: unknown;
}

/** The API answered with an error status. */
export class ApiRequestError extends CliError {
  readonly exitCode = ExitCode.apiRefused;
  constructor(
    readonly status: number,
    readonly body: ApiErrorBody,
    readonly method: string,
    readonly path: string,
  ) {
    super(`${body.code} (HTTP ${status}): ${body.message}`);
    this.name = 'ApiRequestError';
  }
}

/** The server could not be reached (refused, unknown host, timeout, reset). */
export class ServerUnreachableError extends CliError {
  readonly exitCode = ExitCode.unreachable;
  constructor(
    readonly url: string,
    readonly reason: string,
  ) {
    super(`cannot reach the deskpool server at ${url}: ${reason}`);
    this.name = 'ServerUnreachableError';
  }
}

/** The server answered its health or readiness check with a failure. */
export class ServerUnhealthyError extends CliError {
  readonly exitCode = ExitCode.apiRefused;
  constructor(
    readonly url: string,
    readonly what: string,
  ) {
    super(`the deskpool server at ${url} is ${what}; see the checks above`);
    this.name = 'ServerUnhealthyError';
  }
}
