import { promises as fs } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

export const credentialFileSchema = z
  .object({
    serverUrl: z.string(),
    hostId: z.string().min(1),
    credential: z.string().min(16),
    /** The pool's idle rule at enrollment time; the agent's config may override it. */
    idleThresholdSeconds: z.number().positive().optional(),
    enrolledAt: z.string(),
  })
  .strict();
export type CredentialFile = z.infer<typeof credentialFileSchema>;

export function credentialPathOf(stateDir: string): string {
  return path.join(stateDir, 'credential.json');
}

export class NotEnrolled extends Error {
  constructor(file: string) {
    super(`this PC is not enrolled (no ${file}); run \`deskpool-agent enroll --server URL --token TOKEN\` with a token from an admin`);
  }
}

/** Written 0600 to a temp file, fsynced, then renamed: never a half-written credential. */
export async function writeCredential(stateDir: string, credential: CredentialFile): Promise<string> {
  await fs.mkdir(stateDir, { recursive: true, mode: 0o700 });
  const file = credentialPathOf(stateDir);
  const tmp = `${file}.${process.pid}.tmp`;
  const handle = await fs.open(tmp, 'w', 0o600);
  try {
    await handle.writeFile(`${JSON.stringify(credential, null, 2)}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.chmod(tmp, 0o600);
  await fs.rename(tmp, file);
  return file;
}

export async function readCredential(stateDir: string): Promise<CredentialFile> {
  const file = credentialPathOf(stateDir);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotEnrolled(file);
    throw err;
  }
  const parsed = credentialFileSchema.safeParse(JSON.parse(text));
  if (!parsed.success) throw new Error(`credential file ${file} is damaged (${parsed.error.issues[0]?.message}); enroll again`);
  return parsed.data;
}
