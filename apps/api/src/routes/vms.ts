import { recordAudit, type DesktopVm, type Prisma } from '@deskpool/db';
import { createVmSchema, idParamsSchema, listVmsQuerySchema, pageSchema, pinVmSchema, updateVmSchema, vmSchema } from '@deskpool/protocol';
import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { allow, apiCause, principalOf, type Principal } from '../auth.js';
import { inUse, invalidField, notFound, versionConflict } from '../errors.js';
import { lockRow } from '../locks.js';
import { afterCreatedAt, createdAtOrder, decodeCreatedAtCursor, encodeCreatedAtCursor, toPage } from '../pagination.js';
import { notifySafely } from '../notifier.js';
import { presentVm } from '../presenters.js';
import { bearer, deletedResponses, errorResponses, type RouteDeps } from '../route-deps.js';

/** A desktop VM may be deleted only when nothing of it is live on a host. */
const DELETABLE_STATES: DesktopVm['state'][] = ['STOPPED', 'LOST'];

/** Users see only their own desktop; to them another person's VM does not exist. */
function visibleTo(p: Principal, vm: DesktopVm | null): vm is DesktopVm {
  return vm !== null && (p.role === 'admin' || vm.ownerUserId === p.userId);
}

export const vmRoutes: FastifyPluginAsyncZod<RouteDeps> = async (app, { prisma, clock, scheduler }) => {
  const tags = ['vms'];

  app.post('/', { onRequest: allow('admin'), schema: { tags, security: bearer, body: createVmSchema, response: { 201: vmSchema, ...errorResponses } } }, async (request, reply) => {
    const p = principalOf(request);
    const b = request.body;
    const vm = await prisma.$transaction(async (tx) => {
      const owner = await tx.user.findUnique({ where: { id: b.ownerUserId } });
      if (!owner) throw invalidField('body', ['ownerUserId'], `no user ${b.ownerUserId}`);
      const poolId = b.poolId ?? owner.poolId;
      if (poolId === null) throw invalidField('body', ['poolId'], `user ${owner.name} has no pool; give poolId`);
      if (!(await tx.pool.findUnique({ where: { id: poolId }, select: { id: true } }))) throw invalidField('body', ['poolId'], `no pool ${poolId}`);
      const created = await tx.desktopVm.create({
        data: {
          name: b.name,
          ownerUserId: b.ownerUserId,
          poolId,
          vcpus: b.vcpus,
          memoryMiB: b.memoryMiB,
          maxVcpus: b.maxVcpus ?? b.vcpus,
          maxMemoryMiB: b.maxMemoryMiB ?? b.memoryMiB,
          diskGiB: b.diskGiB,
          diskLocation: b.diskLocation,
          state: 'STOPPED',
          stateChangedAt: clock.now(),
        },
      });
      await recordAudit(tx, { entityType: 'vm', entityId: created.id, action: 'create', actor: p.actor, cause: apiCause(request), after: created });
      return created;
    });
    return reply.status(201).send(presentVm(vm));
  });

  app.get('/', { onRequest: allow('admin', 'user'), schema: { tags, security: bearer, querystring: listVmsQuerySchema, response: { 200: pageSchema(vmSchema), ...errorResponses } } }, async (request) => {
    const p = principalOf(request);
    const { limit, cursor, ownerUserId, poolId, state } = request.query;
    const where: Prisma.DesktopVmWhereInput = {
      ...afterCreatedAt(decodeCreatedAtCursor(cursor)),
      ...(ownerUserId !== undefined && { ownerUserId }),
      ...(poolId !== undefined && { poolId }),
      ...(state !== undefined && { state }),
    };
    // A user's listing is always narrowed to their own VMs, whatever the filters say.
    const scoped: Prisma.DesktopVmWhereInput = p.role === 'admin' ? where : { AND: [where, { ownerUserId: p.userId ?? '00000000-0000-0000-0000-000000000000' }] };
    const rows = await prisma.desktopVm.findMany({ where: scoped, orderBy: createdAtOrder, take: limit + 1 });
    return toPage(rows, limit, presentVm, encodeCreatedAtCursor);
  });

  app.get('/:id', { onRequest: allow('admin', 'user'), schema: { tags, security: bearer, params: idParamsSchema, response: { 200: vmSchema, ...errorResponses } } }, async (request) => {
    const p = principalOf(request);
    const vm = await prisma.desktopVm.findUnique({ where: { id: request.params.id } });
    if (!visibleTo(p, vm)) throw notFound('VM', request.params.id);
    return presentVm(vm);
  });

  app.patch('/:id', { onRequest: allow('admin'), schema: { tags, security: bearer, params: idParamsSchema, body: updateVmSchema, response: { 200: vmSchema, ...errorResponses } } }, async (request) => {
    const p = principalOf(request);
    const { id } = request.params;
    const { version, ...changes } = request.body;
    return presentVm(
      await prisma.$transaction(async (tx) => {
        if (!(await lockRow(tx, 'desktop_vms', id))) throw notFound('VM', id);
        const before = await tx.desktopVm.findUniqueOrThrow({ where: { id } });
        if (version !== undefined && version !== before.version) throw versionConflict('VM', id, version, before.version);
        const merged = { ...before, ...changes };
        if (merged.maxVcpus < merged.vcpus) throw invalidField('body', [changes.maxVcpus !== undefined ? 'maxVcpus' : 'vcpus'], `vcpus (${merged.vcpus}) must not exceed maxVcpus (${merged.maxVcpus})`);
        if (merged.maxMemoryMiB < merged.memoryMiB) {
          throw invalidField('body', [changes.maxMemoryMiB !== undefined ? 'maxMemoryMiB' : 'memoryMiB'], `memoryMiB (${merged.memoryMiB}) must not exceed maxMemoryMiB (${merged.maxMemoryMiB})`);
        }
        const after = await tx.desktopVm.update({ where: { id }, data: { ...changes, version: { increment: 1 } } });
        await recordAudit(tx, { entityType: 'vm', entityId: id, action: 'resize', actor: p.actor, cause: apiCause(request), before, after });
        return after;
      }),
    );
  });

  app.delete('/:id', { onRequest: allow('admin'), schema: { tags, security: bearer, params: idParamsSchema, response: deletedResponses } }, async (request, reply) => {
    const p = principalOf(request);
    const { id } = request.params;
    await prisma.$transaction(async (tx) => {
      if (!(await lockRow(tx, 'desktop_vms', id))) throw notFound('VM', id);
      const before = await tx.desktopVm.findUniqueOrThrow({ where: { id } });
      if (!DELETABLE_STATES.includes(before.state)) {
        throw inUse(`VM ${id} is ${before.state}; stop it before deleting it`, { state: before.state });
      }
      await tx.desktopVm.delete({ where: { id } });
      await recordAudit(tx, { entityType: 'vm', entityId: id, action: 'delete', actor: p.actor, cause: apiCause(request), before });
    });
    return reply.status(204).send(null);
  });

  const setPinned = async (request: FastifyRequest, id: string, pinned: boolean, until: string | undefined) => {
    const p = principalOf(request);
    if (until !== undefined && Date.parse(until) <= clock.now().getTime()) throw invalidField('body', ['until'], 'must be in the future');
    const { vm, changed } = await prisma.$transaction(async (tx) => {
      if (!(await lockRow(tx, 'desktop_vms', id))) throw notFound('VM', id);
      const before = await tx.desktopVm.findUniqueOrThrow({ where: { id } });
      if (!visibleTo(p, before)) throw notFound('VM', id);
      const pinnedUntil = pinned && until !== undefined ? new Date(until) : null;
      if (before.pinned === pinned && before.pinnedUntil?.getTime() === pinnedUntil?.getTime()) return { vm: before, changed: false };
      const after = await tx.desktopVm.update({ where: { id }, data: { pinned, pinnedUntil, version: { increment: 1 } } });
      await recordAudit(tx, { entityType: 'vm', entityId: id, action: pinned ? 'pin' : 'unpin', actor: p.actor, cause: apiCause(request), before, after });
      return { vm: after, changed: true };
    });
    // The VM's version names this change uniquely, so a retried publish is queued once.
    if (changed) await notifySafely(request.log, 'pin', scheduler && (() => scheduler.publishPin({ vmId: id, pinned, requestId: `v${vm.version}` })));
    return presentVm(vm);
  };

  app.post(
    '/:id/pin',
    { onRequest: allow('admin', 'user'), schema: { tags, security: bearer, params: idParamsSchema, body: pinVmSchema.nullish(), response: { 200: vmSchema, ...errorResponses } } },
    async (request) => setPinned(request, request.params.id, true, request.body?.until),
  );
  app.post(
    '/:id/unpin',
    { onRequest: allow('admin', 'user'), schema: { tags, security: bearer, params: idParamsSchema, response: { 200: vmSchema, ...errorResponses } } },
    async (request) => setPinned(request, request.params.id, false, undefined),
  );
};
