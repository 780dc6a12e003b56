import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { UsageError } from './errors.js';

/** What ~/.config/deskpool/config.json may hold (written by `deskpool login`). */
export const configFileSchema = z
  .object({
    url: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }).optional(),
    token: z.string().min(1, 'must not be empty').optional(),
  })
  .strict();
export type ConfigFile = z.infer<typeof configFileSchema>;

const urlSchema = z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' });
const tokenSchema = z.string().min(1, 'must not be empty');

export type Source = 'flag' | 'env' | 'config file';

export interface ConfigInputs {
  flags: { url?: string | undefined; token?: string | undefined; config?: string | undefined };
  env: Readonly<Record<string, string | undefined>>;
  /** Reads the config file; undefined when it does not exist. */
  readFile: (path: string) => string | undefined;
  homeDir?: string;
  /** `deskpool login` is about to create the file, so it need not exist yet. */
  allowMissingFile?: boolean;
}

export interface ResolvedConfig {
  configPath: string;
  url?: { value: string; source: Source };
  token?: { value: string; source: Source };
}

/** Where the config file lives: --config, then DESKPOOL_CONFIG, then the XDG default. */
export function configFilePath(inputs: Pick<ConfigInputs, 'flags' | 'env' | 'homeDir'>): {
  path: string;
  explicit: boolean;
} {
  if (inputs.flags.config) return { path: inputs.flags.config, explicit: true };
  if (inputs.env.DESKPOOL_CONFIG) return { path: inputs.env.DESKPOOL_CONFIG, explicit: true };
  const base = inputs.env.XDG_CONFIG_HOME || join(inputs.homeDir ?? homedir(), '.config');
  return { path: join(base, 'deskpool', 'config.json'), explicit: false };
}

export function parseConfigFile(path: string, text: string): ConfigFile {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`config file ${path} is not valid JSON (${(e as Error).message}); fix it or rerun \`deskpool login\``, 'config');
  }
  const parsed = configFileSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.path.join('.') || '(root)';
    throw new UsageError(`config file ${path}: field "${field}" ${issue.message}`, field);
  }
  return parsed.data;
}

/**
 * Server URL and token, each from the first of: flag, environment (DESKPOOL_URL, DESKPOOL_TOKEN),
 * config file. Every value is validated wherever it came from, so a typo in one place is named.
 */
export function resolveConfig(inputs: ConfigInputs): ResolvedConfig {
  const { path, explicit } = configFilePath(inputs);
  const text = inputs.readFile(path);
  if (text === undefined && explicit && !inputs.allowMissingFile) {
    throw new UsageError(`config file ${path} does not exist; create it with \`deskpool login --url URL --token TOKEN\``, 'config');
  }
  const file = text === undefined ? {} : parseConfigFile(path, text);

  const resolved: ResolvedConfig = { configPath: path };
  const url = pick(inputs.flags.url, inputs.env.DESKPOOL_URL, file.url);
  if (url) {
    const checked = urlSchema.safeParse(url.value);
    if (!checked.success) throw new UsageError(`server URL from ${describe(url.source, 'url', path)} ${checked.error.issues[0]!.message}: "${url.value}"`, 'url');
    resolved.url = { value: url.value.replace(/\/+$/, ''), source: url.source };
  }
  const token = pick(inputs.flags.token, inputs.env.DESKPOOL_TOKEN, file.token);
  if (token) {
    const checked = tokenSchema.safeParse(token.value);
    if (!checked.success) throw new UsageError(`token from ${describe(token.source, 'token', path)} ${checked.error.issues[0]!.message}`, 'token');
    resolved.token = token;
  }
  return resolved;
}

function pick(flag: string | undefined, env: string | undefined, file: string | undefined): { value: string; source: Source } | undefined {
  if (flag !== undefined) return { value: flag, source: 'flag' };
  if (env !== undefined && env !== '') return { value: env, source: 'env' };
  if (file !== undefined) return { value: file, source: 'config file' };
  return undefined;
}

function describe(source: Source, field: 'url' | 'token', path: string): string {
  if (source === 'flag') return `--${field}`;
  if (source === 'env') return field === 'url' ? 'DESKPOOL_URL' : 'DESKPOOL_TOKEN';
  return `config file ${path}`;
}

/** The URL, or a usage error that says how to provide one. */
export function requireUrl(config: ResolvedConfig): string {
  if (!config.url) {
    throw new UsageError('no server URL: pass --url, set DESKPOOL_URL, or run `deskpool login --url URL --token TOKEN`', 'url');
  }
  return config.url.value;
}

/** The token, or a usage error that says how to provide one. */
export function requireToken(config: ResolvedConfig): string {
  if (!config.token) {
    throw new UsageError('no API token: pass --token, set DESKPOOL_TOKEN, or run `deskpool login --url URL --token TOKEN`', 'token');
  }
  return config.token.value;
}
