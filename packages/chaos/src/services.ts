// The harness's own PostgreSQL cluster and Redis server, on free ports under a temp dir, so
// restarting them never touches the shared services other work depends on.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promises as fs, openSync, closeSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';

const run = promisify(execFile);
export const PG_BIN = process.env.DESKPOOL_CHAOS_PG_BIN ?? '/usr/lib/postgresql/15/bin';
const PG_USER = 'postgres';

export class ServiceError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ServiceError';
  }
}

/** A TCP port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export async function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) throw new ServiceError(`${what} did not come up within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

/** initdb + pg_ctl as the postgres user; trust authentication on 127.0.0.1 only. */
export class PgCluster {
  private constructor(
    readonly dataDir: string,
    readonly port: number,
    private readonly logFile: string,
  ) {}

  readonly user = 'deskpool';
  get url(): string {
    return `postgresql://${this.user}@127.0.0.1:${this.port}/deskpool`;
  }

  static async create(root: string): Promise<PgCluster> {
    const dir = path.join(root, 'pg');
    await fs.mkdir(dir, { recursive: true });
    await run('chown', ['-R', PG_USER, dir]);
    const dataDir = path.join(dir, 'data');
    const cluster = new PgCluster(dataDir, await freePort(), path.join(dir, 'postgres.log'));
    try {
      await asPostgres(`${PG_BIN}/initdb`, ['-D', dataDir, '-U', cluster.user, '--auth=trust', '-E', 'UTF8', '--no-sync']);
    } catch (err) {
      throw new ServiceError(`initdb failed (is PostgreSQL 15 installed at ${PG_BIN}, and may the "${PG_USER}" user write under ${root}?): ${(err as Error).message}`, { cause: err });
    }
    // Speed over durability of the machine (the OS survives every fault here); crash safety
    // of the server itself is still exercised by immediate-mode restarts.
    await fs.appendFile(path.join(dataDir, 'postgresql.conf'), `\nport = ${cluster.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '${dir}'\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 200\nshared_buffers = 32MB\n`);
    await fs.chown(path.join(dataDir, 'postgresql.conf'), ...(await uidGid()));
    await cluster.start();
    const client = new pg.Client({ connectionString: `postgresql://${cluster.user}@127.0.0.1:${cluster.port}/postgres` });
    await client.connect();
    await client.query('CREATE DATABASE deskpool');
    await client.end();
    return cluster;
  }

  async start(): Promise<void> {
    await asPostgres(`${PG_BIN}/pg_ctl`, ['-D', this.dataDir, '-l', this.logFile, '-w', '-t', '60', 'start']);
  }

  /** Immediate mode: no checkpoint, crash recovery on the next start (like a kill -9). */
  async stop(mode: 'immediate' | 'fast' = 'immediate'): Promise<void> {
    await asPostgres(`${PG_BIN}/pg_ctl`, ['-D', this.dataDir, '-m', mode, '-w', '-t', '60', 'stop']).catch(() => undefined);
  }
}

async function uidGid(): Promise<[number, number]> {
  const { stdout } = await run('id', ['-u', PG_USER]);
  const { stdout: g } = await run('id', ['-g', PG_USER]);
  return [Number(stdout.trim()), Number(g.trim())];
}

async function asPostgres(cmd: string, args: string[]): Promise<void> {
  if (process.getuid?.() === 0) await run('runuser', ['-u', PG_USER, '--', cmd, ...args], { timeout: 120_000 });
  else await run(cmd, args, { timeout: 120_000 });
}

/** redis-server on a free port; restarts keep the data (AOF) or lose it (no persistence). */
export class RedisServer {
  private child: ChildProcess | null = null;
  private constructor(
    readonly dir: string,
    readonly port: number,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async create(root: string): Promise<RedisServer> {
    const dir = path.join(root, 'redis');
    await fs.mkdir(dir, { recursive: true });
    const server = new RedisServer(dir, await freePort());
    await server.start(true);
    return server;
  }

  async start(persistent: boolean): Promise<void> {
    if (!persistent) {
      for (const f of await fs.readdir(this.dir)) await fs.rm(path.join(this.dir, f), { recursive: true, force: true });
    }
    const log = openSync(path.join(path.dirname(this.dir), 'redis.log'), 'a');
    this.child = spawn(
      process.env.DESKPOOL_CHAOS_REDIS_BIN ?? 'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--protected-mode', 'no'],
      { stdio: ['ignore', log, log] },
    );
    closeSync(log);
    this.child.on('error', () => undefined);
    await waitFor(`redis-server on port ${this.port}`, () => this.ping(), 20_000);
  }

  /** kill -9: with appendfsync always, every acknowledged write is in the AOF. */
  async kill(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  async ping(): Promise<boolean> {
    const r = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000 });
    r.on('error', () => undefined);
    try {
      await r.connect();
      return (await r.ping()) === 'PONG';
    } finally {
      r.disconnect();
    }
  }
}
