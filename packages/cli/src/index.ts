export { runCli, buildProgram, renderError } from './program.js';
export type { CliIo } from './context.js';
export { ApiClient } from './http-client.js';
export type { ApiClientOptions, Page, Query } from './http-client.js';
export { resolveConfig, configFilePath, parseConfigFile, configFileSchema, requireToken, requireUrl } from './config.js';
export type { ConfigFile, ConfigInputs, ResolvedConfig } from './config.js';
export { formatTable, formatRecord, chooseColumns, describeIssues, formatIssuePath, cellText } from './format.js';
export type { Column } from './format.js';
export { ExitCode, CliError, UsageError, ApiRequestError, ServerUnreachableError, ServerUnhealthyError } from './errors.js';
