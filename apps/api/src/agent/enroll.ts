import { recordAudit, type Prisma, type PrismaClient } from '@deskpool/db';
import type { EnrollRequest, EnrollResponse, HostInventory } from '@deskpool/protocol';
import { randomBytes } from 'node:crypto';
import type { Clock } from '../clock.js';
import { lockRow } from '../locks.js';
import { generateSecret, hashSecret, SECRET_PREFIX } from '../secrets.js';
import { AgentHttpError } from './errors.js';

/** The host columns that mirror an inventory report. */
export function hostFieldsFromInventory(inv: HostInventory): {
  cores: number;
  memoryMiB: number;
  diskGiB: number;
  gpu: string | null;
  inventory: Prisma.InputJsonValue;
  agentVersion: string;
} {
  return {
    cores: inv.cpuCores,
    memoryMiB: inv.memoryMiB,
    diskGiB: Math.floor(inv.diskGiB),
    gpu: inv.gpus.length > 0 ? inv.gpus.map((g) => `${g.vendor} ${g.model}`).join(', ').slice(0, 512) : null,
    inventory: inv as unknown as Prisma.InputJsonValue,
    agentVersion: inv.agentVersion,
  };
}

/**
 * Trades a one-time enrollment token for a host credential, in one transaction: the token row is
 * locked, so two agents racing with the same token cannot both win. A PC enrolling again (same
 * MAC or name, e.g. after its credential was revoked) keeps its host row and gets a new
 * credential; its old ones are revoked.
 */
export async function enrollHost(prisma: PrismaClient, clock: Clock, request: EnrollRequest, cause: string): Promise<EnrollResponse> {
  const tokenHash = hashSecret(request.token);
  const credential = generateSecret(SECRET_PREFIX.hostCredential);
  const now = clock.now();
  const inv = request.inventory;
  const mac = inv.macAddresses[0] ?? null;
  return prisma.$transaction(async (tx) => {
    const found = await tx.enrollmentToken.findUnique({ where: { tokenHash } });
    if (!found || !(await lockRow(tx, 'enrollment_tokens', found.id))) {
      throw new AgentHttpError(401, 'ENROLLMENT_TOKEN_INVALID', 'the enrollment token is not known; ask an admin for a new one (`deskpool enrollment-tokens create`)');
    }
    const token = await tx.enrollmentToken.findUniqueOrThrow({ where: { id: found.id }, include: { pool: true } });
    if (token.revokedAt) throw new AgentHttpError(410, 'ENROLLMENT_TOKEN_REVOKED', 'the enrollment token was revoked by an admin; ask for a new one');
    if (token.usedAt) throw new AgentHttpError(409, 'ENROLLMENT_TOKEN_USED', 'the enrollment token was already used; each token enrolls one PC, ask an admin for another');
    if (token.expiresAt.getTime() <= now.getTime()) throw new AgentHttpError(410, 'ENROLLMENT_TOKEN_EXPIRED', `the enrollment token expired at ${token.expiresAt.toISOString()}; ask an admin for a new one`);

    const existing =
      (mac ? await tx.host.findUnique({ where: { mac } }) : null) ?? (await tx.host.findUnique({ where: { name: inv.hostname } }));
    const sameMachine = existing !== null && (existing.mac === null || mac === null || existing.mac === mac);
    const actor = `agent:${inv.hostname}`;
    let hostId: string;
    let hostName: string;
    if (existing && sameMachine) {
      const revoked = await tx.hostCredential.updateMany({ where: { hostId: existing.id, revokedAt: null }, data: { revokedAt: now } });
      const updated = await tx.host.update({ where: { id: existing.id }, data: { ...hostFieldsFromInventory(inv), pool: { connect: { id: token.poolId } }, mac, version: { increment: 1 } } });
      hostId = updated.id;
      hostName = updated.name;
      await recordAudit(tx, { entityType: 'host', entityId: hostId, action: 'reenroll', actor, cause, before: { poolId: existing.poolId, revokedCredentials: revoked.count }, after: { poolId: token.poolId, enrollmentTokenId: token.id } });
    } else {
      // A different machine already has this name: keep both, distinguishable.
      const name = existing ? `${inv.hostname}-${randomBytes(3).toString('hex')}` : inv.hostname;
      const created = await tx.host.create({
        data: { ...hostFieldsFromInventory(inv), name, poolId: token.poolId, mac },
      });
      hostId = created.id;
      hostName = created.name;
      await recordAudit(tx, { entityType: 'host', entityId: hostId, action: 'enroll', actor, cause, after: { name, poolId: token.poolId, enrollmentTokenId: token.id, inventory: inv } });
    }
    await tx.hostCredential.create({ data: { hostId, secretHash: hashSecret(credential) } });
    await tx.enrollmentToken.update({ where: { id: token.id }, data: { usedAt: now, usedByHostId: hostId } });
    await recordAudit(tx, { entityType: 'enrollment_token', entityId: token.id, action: 'use', actor, cause, after: { usedByHostId: hostId } });
    return { hostId, hostName, poolId: token.poolId, credential, idleThresholdSeconds: token.pool.idleThresholdMinutes * 60 };
  });
}

export interface AuthenticatedHost {
  hostId: string;
  hostName: string;
  credentialId: string;
}

/** Resolves `Authorization: Bearer <host credential>`; revoked credentials are told apart from unknown ones. */
export async function authenticateHost(prisma: PrismaClient, header: string | undefined): Promise<AuthenticatedHost> {
  const match = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match?.[1]) throw new AgentHttpError(401, 'UNAUTHORIZED', 'send the host credential as "Authorization: Bearer <credential>"; enroll first if this PC has none');
  const row = await prisma.hostCredential.findUnique({ where: { secretHash: hashSecret(match[1]) }, include: { host: { select: { name: true } } } });
  if (!row) throw new AgentHttpError(401, 'UNAUTHORIZED', 'the host credential is not known (never issued, or revoked when its host was removed); enroll this PC again with a new token');
  if (row.revokedAt) throw new AgentHttpError(401, 'CREDENTIAL_REVOKED', `this host's credential was revoked at ${row.revokedAt.toISOString()}; enroll again with a new token if the PC should rejoin`);
  return { hostId: row.hostId, hostName: row.host.name, credentialId: row.id };
}
