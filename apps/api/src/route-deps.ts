import type { PrismaClient } from '@deskpool/db';
import { errorBodySchema } from '@deskpool/protocol';
import { z } from 'zod';
import type { Clock } from './clock.js';
import type { SchedulerNotifier } from './notifier.js';

/** What every resource plugin gets as its options. */
export interface RouteDeps {
  prisma: PrismaClient;
  clock: Clock;
  scheduler?: SchedulerNotifier | undefined;
}

/** Documented error answers shared by authenticated routes (OpenAPI only; bodies come from the error handler). */
export const errorResponses = {
  400: errorBodySchema,
  401: errorBodySchema,
  403: errorBodySchema,
  404: errorBodySchema,
  409: errorBodySchema,
} as const;

export const bearer = [{ bearerAuth: [] }];

/** DELETE answers 204 with no body. */
export const deletedResponses = { 204: z.null().describe('deleted'), ...errorResponses } as const;
