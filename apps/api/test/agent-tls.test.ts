// The agent's channel and enrollment over TLS with a private CA (as an office deployment runs).
import { execFileSync } from 'node:child_process';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAgent, runAgentCli, startApi, tempDir, type AgentProcess, type ApiUnderTest } from './agent-harness.js';
import { randomUUID } from 'node:crypto';
import { generateSecret, hashSecret, SECRET_PREFIX } from '../src/secrets.js';

describe('agent over TLS', () => {
  let api: ApiUnderTest;
  let dir: { dir: string; remove(): void };
  let caFile: string;
  let agent: AgentProcess | undefined;

  beforeAll(async () => {
    buildAgent();
    dir = tempDir('agent-tls');
    caFile = path.join(dir.dir, 'ca.pem');
    const keyFile = path.join(dir.dir, 'key.pem');
    // A self-signed certificate for 127.0.0.1 that doubles as its own CA.
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', caFile, '-days', '1', '-subj', '/CN=deskpool-test', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    api = await startApi({ https: { key: readFileSync(keyFile), cert: readFileSync(caFile) } });
  });

  afterAll(async () => {
    await agent?.kill('SIGKILL');
    await api?.close();
    dir?.remove();
  });

  /** Enrollment tokens straight into the database: the admin REST call is not what is tested here. */
  async function token(): Promise<string> {
    const secret = generateSecret(SECRET_PREFIX.enrollmentToken);
    await api.db.prisma.enrollmentToken.create({ data: { tokenHash: hashSecret(secret), poolId: api.poolId, createdBy: 'test', expiresAt: new Date(Date.now() + 600_000) } });
    return secret;
  }

  it('refuses a server it cannot verify, and enrolls and connects (wss) when given the CA', async () => {
    const stateDir = path.join(dir.dir, `state-${randomUUID().slice(0, 6)}`);
    const env = { DESKPOOL_SERVER_URL: api.url, DESKPOOL_AGENT_STATE_DIR: stateDir, DESKPOOL_AGENT_PRESENCE_SOURCES: JSON.stringify([{ kind: 'logind', pollSeconds: 60 }]) };
    const untrusted = runAgentCli(['enroll', '--token', await token()], env);
    expect(await untrusted.exited).toBe(1);
    expect(untrusted.output()).toMatch(/certificate/i);

    const trusted = { ...env, DESKPOOL_AGENT_CA_FILE: caFile };
    const enroll = runAgentCli(['enroll', '--token', await token()], trusted);
    expect(await enroll.exited, enroll.output()).toBe(0);
    const hostId = (JSON.parse(readFileSync(path.join(stateDir, 'credential.json'), 'utf8')) as { hostId: string }).hostId;
    agent = runAgentCli(['run'], trusted);
    await expect.poll(async () => (await api.db.prisma.host.findUniqueOrThrow({ where: { id: hostId } })).onlineState, { timeout: 20_000 }).toBe('online');
    expect(api.gateway.registry.isConnectedHere(hostId)).toBe(true);
  });

  /** A REST call over HTTPS, trusting only `ca` (none: the system's roots). */
  function restOverTls(ca: Buffer | undefined): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = https.request(`${api.url}/api/v1/me`, { headers: { authorization: `Bearer ${api.adminToken}` }, ...(ca ? { ca } : {}) }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });
  }

  it('serves the REST API over TLS: verified with the private CA, refused without it, never in clear text', async () => {
    const ok = await restOverTls(readFileSync(caFile));
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toMatchObject({ role: 'admin' });
    await expect(restOverTls(undefined)).rejects.toThrow(/self[- ]signed|certificate/i);
    // Plain HTTP to the TLS port gets no API answer.
    const plain = await fetch(`http://127.0.0.1:${api.port}/api/v1/me`, { headers: { authorization: `Bearer ${api.adminToken}` } }).then((r) => r.status, (err: unknown) => String(err));
    expect(plain).not.toBe(200);
  });
});
