import { recordAudit, type PrismaClient } from '@deskpool/db';
import { hashSecret } from './secrets.js';

export const BOOTSTRAP_TOKEN_NAME = 'bootstrap-admin';

/**
 * Makes the configured bootstrap secret a valid admin token, so a fresh install can log in.
 * Idempotent and safe when several API processes start at once (the hash is unique).
 * A bootstrap token that an admin has revoked stays revoked.
 */
export async function ensureBootstrapAdminToken(prisma: PrismaClient, secret: string): Promise<'created' | 'exists'> {
  const tokenHash = hashSecret(secret);
  return prisma.$transaction(async (tx) => {
    const inserted = await tx.$executeRaw`
      INSERT INTO "api_tokens" ("token_hash", "name", "role") VALUES (${tokenHash}, ${BOOTSTRAP_TOKEN_NAME}, 'admin')
      ON CONFLICT ("token_hash") DO NOTHING`;
    if (inserted === 0) return 'exists';
    const token = await tx.apiToken.findUniqueOrThrow({ where: { tokenHash } });
    await recordAudit(tx, {
      entityType: 'api_token',
      entityId: token.id,
      action: 'create',
      actor: 'system',
      cause: 'startup:DESKPOOL_BOOTSTRAP_ADMIN_TOKEN',
      after: { id: token.id, name: token.name, role: token.role },
    });
    return 'created';
  });
}
