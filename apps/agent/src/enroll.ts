import http from 'node:http';
import https from 'node:https';
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
  /** CA certificate(s) to trust for an https server. */
  ca?: Buffer;
}): Promise<{ response: EnrollResponse; credentialFile: string }> {
  const url = new URL('/api/v1/agent/enroll', options.serverUrl);
  const res = await postJson(url, { token: options.token, inventory: options.inventory }, options.ca);
  let body: unknown = null;
  try {
    body = JSON.parse(res.text);
  } catch {
    /* reported below */
  }
  if (res.status < 200 || res.status >= 300) {
    const error = (body as { error?: { code?: string; message?: string } } | null)?.error;
    throw new EnrollmentRefused(res.status, error?.code ?? `HTTP_${res.status}`, error?.message ?? `enrollment failed with HTTP ${res.status}`);
  }
  const parsed = enrollResponseSchema.safeParse(body);
  if (!parsed.success) throw new Error(`the server's enrollment answer is not what this agent understands: ${parsed.error.issues[0]?.message}`);
  const credentialFile = await writeCredential(options.stateDir, {
    serverUrl: options.serverUrl,
    hostId: parsed.data.hostId,
    credential: parsed.data.credential,
    idleThresholdSeconds: parsed.data.idleThresholdSeconds,
    enrolledAt: new Date().toISOString(),
  });
  return { response: parsed.data, credentialFile };
}

/** POST with node's http(s), which (unlike fetch) takes a private CA directly. */
function postJson(url: URL, payload: unknown, ca: Buffer | undefined): Promise<{ status: number; text: string }> {
  const body = JSON.stringify(payload);
  const request = url.protocol === 'https:' ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }, timeout: 30_000, ...(ca ? { ca } : {}) },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += text.length < 1_000_000 ? chunk : ''));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url.origin} within 30 s`)));
    req.on('error', (err) => reject(new Error(`cannot reach ${url.origin}: ${err.message}`)));
    req.end(body);
  });
}
