import { promises as fs } from 'node:fs';
import net from 'node:net';
import { z } from 'zod';

/** What `deskpool-agent signin` sends over the local socket: one JSON line. */
export const localRequestSchema = z.object({ type: z.literal('signin'), user: z.string().min(1).max(128).regex(/^[A-Za-z0-9._@-]+$/, 'user name: letters, digits, . _ @ -') }).strict();
export type LocalRequest = z.infer<typeof localRequestSchema>;
export type LocalReply = { ok: true } | { ok: false; error: string };

/**
 * A unix socket only root (or the agent's user) can use (0600), so the display manager's
 * session hook can tell the agent who signed in.
 */
export async function listenLocal(socketPath: string, onRequest: (req: LocalRequest) => void): Promise<net.Server> {
  await fs.rm(socketPath, { force: true });
  const server = net.createServer((conn) => {
    let buf = '';
    conn.setEncoding('utf8');
    conn.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > 4096) {
        conn.end(`${JSON.stringify({ ok: false, error: 'request too long' } satisfies LocalReply)}\n`);
        return;
      }
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      let reply: LocalReply;
      try {
        const parsed = localRequestSchema.safeParse(JSON.parse(buf.slice(0, nl)));
        if (parsed.success) {
          onRequest(parsed.data);
          reply = { ok: true };
        } else reply = { ok: false, error: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') };
      } catch {
        reply = { ok: false, error: 'request is not JSON' };
      }
      conn.end(`${JSON.stringify(reply)}\n`);
    });
    conn.on('error', () => undefined);
  });
  const oldMask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => resolve());
    });
  } finally {
    process.umask(oldMask);
  }
  await fs.chmod(socketPath, 0o600);
  return server;
}

export async function sendLocal(socketPath: string, request: LocalRequest): Promise<LocalReply> {
  return new Promise((resolve, reject) => {
    const conn = net.createConnection(socketPath);
    let buf = '';
    conn.setEncoding('utf8');
    conn.on('connect', () => conn.write(`${JSON.stringify(request)}\n`));
    conn.on('data', (chunk: string) => (buf += chunk));
    conn.on('end', () => {
      try {
        resolve(JSON.parse(buf) as LocalReply);
      } catch {
        reject(new Error('the agent gave an unreadable answer'));
      }
    });
    conn.on('error', (err) => reject(new Error(`cannot reach the running agent at ${socketPath} (${err.message}); is deskpool-agent running?`)));
  });
}
