import { enrollResponseSchema, type EnrollResponse, type HostInventory } from '@deskpool/protocol';
import { writeCredential } from './credential.js';

export class EnrollmentRefused extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Trades a one-time token for this host's credential and stores it (0600) in the state dir. */
export async function enroll(options: {
  serverUrl: string;
  token: string;
  stateDir: string;
  inventory: HostInventory;
  fetchImpl?: typeof fetch;
}): Promise<{ response: EnrollResponse; credentialFile: string }> {
  const url = new URL('/api/v1/agent/enroll', options.serverUrl);
  const res = await (options.fetchImpl ?? fetch)(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token: options.token, inventory: options.inventory }),
  });
  const body = (await res.json().catch(() => null)) as unknown;
  if (!res.ok) {
    const error = (body as { error?: { code?: string; message?: string } } | null)?.error;
    throw new EnrollmentRefused(res.status, error?.code ?? `HTTP_${res.status}`, error?.message ?? `enrollment failed with HTTP ${res.status}`);
  }
  const parsed = enrollResponseSchema.safeParse(body);
  if (!parsed.success) throw new Error(`the server's enrollment answer is not what this agent understands: ${parsed.error.issues[0]?.message}`);
  const credentialFile = await writeCredential(options.stateDir, {
    serverUrl: options.serverUrl,
    hostId: parsed.data.hostId,
    credential: parsed.data.credential,
    enrolledAt: new Date().toISOString(),
  });
  return { response: parsed.data, credentialFile };
}
