import type { PrismaClient, User } from '@deskpool/db';
import type { UserRoleName } from '@deskpool/protocol';
import type { FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import type { Clock } from './clock.js';
import { ApiError, forbidden } from './errors.js';
import { hashesEqual, hashSecret } from './secrets.js';

export interface Principal {
  tokenId: string;
  tokenName: string;
  role: UserRoleName;
  userId: string | null;
  user: User | null;
  /** How this caller is named in the audit trail. */
  actor: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
}

// Writing last_used_at on every request would turn each read into a write; a minute's
// resolution is plenty for "is this token still in use?".
const LAST_USED_RESOLUTION_MS = 60_000;

export function actorOf(tokenId: string, user: Pick<User, 'name'> | null): string {
  return user ? `user:${user.name}` : `token:${tokenId}`;
}

/** onRequest hook: resolves `Authorization: Bearer <token>` to a principal or answers 401. */
export function authenticate(prisma: PrismaClient, clock: Clock): onRequestHookHandler {
  return async function authenticateRequest(request: FastifyRequest, _reply: FastifyReply) {
    const header = request.headers.authorization;
    const match = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) throw new ApiError(401, 'UNAUTHORIZED', 'send an API token as "Authorization: Bearer <token>"');
    const hash = hashSecret(match[1]!);
    const token = await prisma.apiToken.findUnique({ where: { tokenHash: hash }, include: { user: true } });
    if (!token || token.revokedAt !== null || !hashesEqual(token.tokenHash, hash)) {
      throw new ApiError(401, 'UNAUTHORIZED', 'the API token is unknown or revoked; ask an admin for a new one');
    }
    const now = clock.now();
    if (token.lastUsedAt === null || now.getTime() - token.lastUsedAt.getTime() > LAST_USED_RESOLUTION_MS) {
      await prisma.apiToken.update({ where: { id: token.id }, data: { lastUsedAt: now } });
    }
    request.principal = {
      tokenId: token.id,
      tokenName: token.name,
      role: token.role,
      userId: token.userId,
      user: token.user,
      actor: actorOf(token.id, token.user),
    };
  };
}

/** Route-level onRequest hook: only these roles may call the route. */
export function allow(...roles: UserRoleName[]): onRequestHookHandler {
  return async function allowRoles(request: FastifyRequest) {
    const p = request.principal;
    if (!p) throw new ApiError(401, 'UNAUTHORIZED', 'send an API token as "Authorization: Bearer <token>"');
    if (!roles.includes(p.role)) throw forbidden(`this needs the ${roles.join(' or ')} role; your token has ${p.role}`);
  };
}

export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new ApiError(401, 'UNAUTHORIZED', 'send an API token as "Authorization: Bearer <token>"');
  return request.principal;
}

/** The audit cause of a change made through the REST API. */
export function apiCause(request: FastifyRequest): string {
  return `api:${request.method} ${request.routeOptions.url ?? request.url} (${request.id})`;
}
