import { z } from 'zod';
import { ApiRequestError, ServerUnreachableError } from './errors.js';

const errorBodySchema = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }),
});

const pageSchema = z.object({
  items: z.array(z.unknown()),
  nextCursor: z.string().nullable().optional(),
});
export interface Page<T = unknown> {
  items: T[];
  nextCursor: string | null;
}

export type Query = Record<string, string | number | boolean | undefined>;

export interface ApiClientOptions {
  baseUrl: string;
  token?: string | undefined;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

export interface RequestOptions {
  query?: Query;
  body?: unknown;
}

/** Node's fetch reports network failures as TypeError('fetch failed') with the reason in `cause`. */
const NETWORK_CODES: Record<string, string> = {
  ECONNREFUSED: 'connection refused (is the API running, and is the port right?)',
  ENOTFOUND: 'host name not found (check the URL)',
  EAI_AGAIN: 'host name lookup failed temporarily (check DNS or the URL)',
  ECONNRESET: 'connection reset by the server',
  EHOSTUNREACH: 'host unreachable (check the network or the URL)',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'connection timed out',
  UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
  UND_ERR_SOCKET: 'the connection closed unexpectedly',
  EPROTO: 'TLS/protocol error (http:// vs https:// mix-up?)',
};

/**
 * The one place the CLI talks HTTP: bearer auth, JSON bodies, the API's error envelope and
 * cursor pagination. Knows nothing of commands or output.
 */
export class ApiClient {
  private readonly fetchImpl: typeof fetch;
  private readonly timeoutMs: number;

  constructor(private readonly options: ApiClientOptions) {
    this.fetchImpl = options.fetch ?? fetch;
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  get baseUrl(): string {
    return this.options.baseUrl;
  }

  async request<T = unknown>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const { status, body } = await this.send(method, path, opts);
    if (status >= 400) throw toApiError(status, body, method, path);
    return body as T;
  }

  /** Like request, but hands back error statuses too (health checks answer 503 with a body). */
  async send(method: string, path: string, opts: RequestOptions = {}): Promise<{ status: number; body: unknown }> {
    const url = new URL(this.options.baseUrl + path);
    for (const [key, value] of Object.entries(opts.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    if (opts.body !== undefined) headers['content-type'] = 'application/json';

    let response: Response;
    try {
      response = await this.fetchImpl(url, {
        method,
        headers,
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (e) {
      throw new ServerUnreachableError(this.options.baseUrl, describeNetworkError(e, this.timeoutMs));
    }
    const text = await response.text();
    let body: unknown = undefined;
    if (text !== '') {
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
    }
    return { status: response.status, body };
  }

  /**
   * GET a text answer and hand it over piece by piece as it arrives (e.g. a followed log). The
   * timeout bounds the wait for the answer to start, not its length: a follow lasts as long as
   * the thing it follows.
   */
  async stream(path: string, query: Query, onText: (text: string) => void): Promise<void> {
    const url = new URL(this.options.baseUrl + path);
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const headers: Record<string, string> = { accept: 'text/plain, application/json' };
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    const started = new AbortController();
    const timer = setTimeout(() => started.abort(), this.timeoutMs);
    let response: Response;
    try {
      response = await this.fetchImpl(url, { method: 'GET', headers, signal: started.signal });
    } catch (e) {
      throw new ServerUnreachableError(this.options.baseUrl, describeNetworkError(e, this.timeoutMs));
    } finally {
      clearTimeout(timer);
    }
    if (response.status >= 400) {
      const text = await response.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // not JSON: keep the text for the message
      }
      throw toApiError(response.status, body, 'GET', path);
    }
    if (!response.body) return;
    const decoder = new TextDecoder();
    try {
      for await (const piece of response.body) onText(decoder.decode(piece, { stream: true }));
    } catch (e) {
      throw new ServerUnreachableError(this.options.baseUrl, `the answer broke off: ${describeNetworkError(e, this.timeoutMs)}`);
    }
    const rest = decoder.decode();
    if (rest !== '') onText(rest);
  }

  async listPage<T = unknown>(path: string, query: Query = {}): Promise<Page<T>> {
    const body = await this.request('GET', path, { query });
    const page = pageSchema.safeParse(body);
    if (!page.success) {
      throw new ApiRequestError(200, { code: 'UNEXPECTED_RESPONSE', message: `GET ${path} did not answer { items, nextCursor }; is --url pointing at a deskpool API?` }, 'GET', path);
    }
    return { items: page.data.items as T[], nextCursor: page.data.nextCursor ?? null };
  }

  /** Follows nextCursor until the last page. */
  async listAll<T = unknown>(path: string, query: Query = {}): Promise<T[]> {
    const items: T[] = [];
    let cursor: string | undefined = typeof query.cursor === 'string' ? query.cursor : undefined;
    for (;;) {
      const page = await this.listPage<T>(path, { ...query, cursor });
      items.push(...page.items);
      if (!page.nextCursor || page.nextCursor === cursor) return items;
      cursor = page.nextCursor;
    }
  }
}

function toApiError(status: number, body: unknown, method: string, path: string): ApiRequestError {
  const parsed = errorBodySchema.safeParse(body);
  if (parsed.success) return new ApiRequestError(status, parsed.data.error, method, path);
  const snippet = typeof body === 'string' ? body.slice(0, 200) : JSON.stringify(body ?? null).slice(0, 200);
  return new ApiRequestError(status, { code: `HTTP_${status}`, message: `unexpected error response: ${snippet}` }, method, path);
}

function describeNetworkError(e: unknown, timeoutMs: number): string {
  if (e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError')) {
    return `no answer within ${timeoutMs / 1000} s (raise --timeout, or check the server)`;
  }
  // Walk the cause chain (and AggregateError members, as for "localhost" → ::1 and 127.0.0.1)
  // for a system error code; fall back to the innermost message (e.g. "bad port").
  let cause: unknown = e;
  let innermost = e instanceof Error ? e.message : String(e);
  for (let depth = 0; depth < 5 && cause; depth++) {
    const code = (cause as { code?: unknown }).code ?? (cause as { errors?: Array<{ code?: unknown }> }).errors?.[0]?.code;
    if (typeof code === 'string') return NETWORK_CODES[code] ?? code;
    if (cause instanceof Error) innermost = cause.message;
    cause = (cause as { cause?: unknown }).cause;
  }
  return innermost;
}
