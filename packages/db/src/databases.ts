// Creating and dropping whole databases through an admin connection (its role needs CREATEDB):
// tests and the demo each get a database of their own.
import pg from 'pg';

/** Creates database `name` next to the one `adminUrl` names, and returns its connection string. */
export async function createDatabase(adminUrl: string, name: string): Promise<string> {
  await withAdmin(adminUrl, (c) => c.query(`CREATE DATABASE ${quoteIdent(name)}`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Drops database `name`, closing its connections; no error if it is already gone. */
export async function dropDatabase(adminUrl: string, name: string): Promise<void> {
  // FORCE ends the database's sessions, but a non-superuser may not end an autovacuum worker's
  // (insufficient_privilege, 42501); that worker is done within moments, so try again.
  for (let attempt = 1; ; attempt++) {
    try {
      await withAdmin(adminUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`));
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== '42501' || attempt >= 40) throw err;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

async function withAdmin<T>(adminUrl: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl });
  // A connection the server ends (e.g. a dropped database) must not crash the process.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    throw new Error(
      `Cannot reach PostgreSQL at ${redact(adminUrl)}: ${(err as Error).message}. ` +
        'Start services with `bash scripts/services.sh` (as root) or point the URL at a running server.',
      { cause: err },
    );
  }
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export function redact(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
}
