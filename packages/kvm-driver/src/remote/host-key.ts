// Host key checking for outgoing SSH connections. Pure: parses known_hosts text and compares
// the key a server presents against what the caller trusts, so a changed or spoofed host is
// refused before any credential or command is sent.
import { createHash } from 'node:crypto';

export interface KnownHostKey {
  /** Host patterns of the known_hosts line ("10.77.0.2", "[pc42]:2222", "pc42,10.0.0.42"). */
  hosts: string[];
  /** Key type ("ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-512"/"ssh-rsa"). */
  type: string;
  /** The public key blob, base64 as written in the file. */
  keyBase64: string;
}

/**
 * Parses OpenSSH known_hosts text. Comments, blank lines, hashed hosts ("|1|...") and marker
 * lines (@revoked/@cert-authority) are skipped: we only trust plain entries we can read.
 */
export function parseKnownHosts(text: string): KnownHostKey[] {
  const out: KnownHostKey[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith('@') || line.startsWith('|')) continue;
    const [hosts, type, key] = line.split(/\s+/);
    if (!hosts || !type || !key || !/^[A-Za-z0-9+/]+=*$/.test(key)) continue;
    out.push({ hosts: hosts.split(','), type, keyBase64: key });
  }
  return out;
}

/** known_hosts spells a non-default port as "[host]:port". */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** OpenSSH-style fingerprint: "SHA256:" + unpadded base64 of sha256(key blob). */
export function sha256Fingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** The key type named inside an SSH public key blob (first length-prefixed string). */
export function keyTypeOfBlob(keyBlob: Buffer): string | undefined {
  if (keyBlob.length < 4) return undefined;
  const len = keyBlob.readUInt32BE(0);
  if (len <= 0 || len > 64 || keyBlob.length < 4 + len) return undefined;
  return keyBlob.subarray(4, 4 + len).toString('ascii');
}

/** What the caller trusts about a host: known_hosts entries and/or pinned SHA256 fingerprints. */
export interface HostKeyTrust {
  knownHosts?: KnownHostKey[];
  fingerprints?: string[];
}

export type HostKeyVerdict = { ok: true } | { ok: false; presented: string; expected: string[] };

export function checkHostKey(trust: HostKeyTrust, host: string, port: number, keyBlob: Buffer): HostKeyVerdict {
  const presented = sha256Fingerprint(keyBlob);
  const name = knownHostsName(host, port);
  const entries = (trust.knownHosts ?? []).filter((k) => k.hosts.includes(name));
  const expected = [
    ...entries.map((k) => sha256Fingerprint(Buffer.from(k.keyBase64, 'base64'))),
    ...(trust.fingerprints ?? []).map(normaliseFingerprint),
  ];
  return expected.includes(presented) ? { ok: true } : { ok: false, presented, expected };
}

/** Host key algorithms worth offering: only the types we could accept, so the server does not pick another. */
export function acceptableKeyTypes(trust: HostKeyTrust, host: string, port: number): string[] | undefined {
  if ((trust.fingerprints ?? []).length > 0) return undefined; // a fingerprint does not say its type
  const name = knownHostsName(host, port);
  const types = new Set<string>();
  for (const k of trust.knownHosts ?? []) {
    if (!k.hosts.includes(name)) continue;
    if (k.type === 'ssh-rsa') ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'].forEach((t) => types.add(t));
    else types.add(k.type);
  }
  return types.size > 0 ? [...types] : undefined;
}

function normaliseFingerprint(f: string): string {
  const t = f.trim();
  return t.startsWith('SHA256:') ? t.replace(/=+$/, '') : `SHA256:${t.replace(/=+$/, '')}`;
}
