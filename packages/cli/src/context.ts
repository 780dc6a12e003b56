import type { Command } from 'commander';
import type { ResolvedConfig } from './config.js';
import { requireToken, requireUrl, resolveConfig } from './config.js';
import type { Column } from './format.js';
import { chooseColumns, formatRecord, formatTable } from './format.js';
import { ApiClient } from './http-client.js';
import type { Page, Query } from './http-client.js';

/** Everything a command touches outside itself, injected so tests can run the CLI in-process. */
export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: Readonly<Record<string, string | undefined>>;
  readFile: (path: string) => string | undefined;
  writeConfig: (path: string, config: { url?: string; token?: string }) => void;
  fetch?: typeof fetch;
}

export interface GlobalOptions {
  url?: string;
  token?: string;
  config?: string;
  json?: boolean;
  timeout?: number;
}

export interface ListOptions {
  limit?: number;
  cursor?: string;
  all?: boolean;
}

/** Per-invocation context: resolved config, an API client, and output in the chosen mode. */
export class CommandContext {
  readonly options: GlobalOptions;
  private resolved?: ResolvedConfig;

  constructor(
    readonly io: CliIo,
    command: Command,
  ) {
    this.options = command.optsWithGlobals<GlobalOptions>();
  }

  get json(): boolean {
    return this.options.json === true;
  }

  config(options: { allowMissingFile?: boolean } = {}): ResolvedConfig {
    this.resolved ??= resolveConfig({ flags: this.options, env: this.io.env, readFile: this.io.readFile, allowMissingFile: options.allowMissingFile ?? false });
    return this.resolved;
  }

  /** A client for an authenticated route. */
  client(): ApiClient {
    const config = this.config();
    const url = requireUrl(config);
    return this.makeClient(url, requireToken(config));
  }

  /** A client for routes anyone may call (health checks). */
  anonymousClient(): ApiClient {
    const config = this.config();
    return this.makeClient(requireUrl(config), config.token?.value);
  }

  private makeClient(baseUrl: string, token: string | undefined): ApiClient {
    return new ApiClient({ baseUrl, token, timeoutMs: (this.options.timeout ?? 30) * 1000, fetch: this.io.fetch });
  }

  /** Prints one page (or, with --all, every page) of a list endpoint. */
  async list(path: string, query: Query, options: ListOptions, columns: readonly Column[]): Promise<void> {
    const client = this.client();
    const base = { ...query, limit: options.limit };
    let page: Page;
    if (options.all) {
      page = { items: await client.listAll(path, { ...base, cursor: options.cursor }), nextCursor: null };
    } else {
      page = await client.listPage(path, { ...base, cursor: options.cursor });
    }
    if (this.json) {
      this.io.stdout(JSON.stringify(page, null, 2));
      return;
    }
    this.io.stdout(formatTable(page.items, chooseColumns(page.items, columns)));
    if (page.nextCursor) this.io.stderr(`more results: rerun with --cursor ${page.nextCursor}, or --all`);
  }

  /** Prints one record: JSON as is, or a key/value block. */
  record(record: unknown, note?: string): void {
    if (this.json) {
      this.io.stdout(JSON.stringify(record, null, 2));
      return;
    }
    this.io.stdout(formatRecord(record));
    if (note) this.io.stderr(note);
  }

  /** A one-line outcome for commands whose answer has no body. */
  done(message: string, data: unknown = { ok: true }): void {
    this.io.stdout(this.json ? JSON.stringify(data, null, 2) : message);
  }
}
