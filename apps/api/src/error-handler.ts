import { Prisma } from '@deskpool/db';
import type { ApiErrorCode, ErrorBody, ValidationIssue } from '@deskpool/protocol';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors, type ZodFastifySchemaValidationError } from 'fastify-type-provider-zod';
import { ApiError } from './errors.js';

function body(code: ApiErrorCode, message: string, details?: unknown): ErrorBody {
  return details === undefined ? { error: { code, message } } : { error: { code, message, details } };
}

const LOCATIONS: Record<string, ValidationIssue['location']> = { body: 'body', querystring: 'query', params: 'params', headers: 'headers' };

function toIssue(location: string, v: ZodFastifySchemaValidationError): ValidationIssue[] {
  const path: (string | number)[] = v.instancePath
    .split('/')
    .filter((s) => s !== '')
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
  // An unknown key is reported on its parent object; name the key itself.
  const keys = (v.params as { keys?: unknown }).keys;
  if (v.keyword === 'unrecognized_keys' && Array.isArray(keys)) {
    return keys.map((k) => ({ location, path: [...path, String(k)], message: `unknown field ${String(k)}` }));
  }
  return [{ location, path, message: v.message ?? 'invalid' }];
}

/** Fastify's own 4xx errors (body parsing, content type, size) mapped to our codes. */
const FASTIFY_CODES: Record<string, ApiErrorCode> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'BAD_REQUEST',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'BAD_REQUEST',
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BAD_REQUEST',
};

/**
 * Errors fastify raises before routing (a URL that is not valid percent-encoding): by default
 * they bypass the error handler and answer in fastify's own shape; here they get the envelope.
 * Pass as the `frameworkErrors` option of Fastify().
 */
export function frameworkErrors(error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  const status = typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 400;
  void reply.status(status).send(body('BAD_REQUEST', error.message));
}

export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    if (hasZodFastifySchemaValidationErrors(error)) {
      const location = LOCATIONS[error.validationContext ?? 'body'] ?? 'body';
      const issues = error.validation.flatMap((v) => toIssue(location, v));
      const summary = issues.map((i) => `${[i.location, ...i.path].join('.')}: ${i.message}`).join('; ');
      return reply.status(400).send(body('VALIDATION_FAILED', summary, { issues }));
    }
    if (error instanceof ApiError) {
      return reply.status(error.statusCode).send(body(error.code, error.message, error.details));
    }
    if (error instanceof Prisma.PrismaClientKnownRequestError) {
      const mapped = mapPrismaError(error);
      if (mapped) {
        if (mapped.statusCode === 503) void reply.header('retry-after', '1');
        return reply.status(mapped.statusCode).send(body(mapped.code, mapped.message, mapped.details));
      }
    }
    const status = error.statusCode;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      const code = FASTIFY_CODES[error.code] ?? (status === 429 ? 'RATE_LIMITED' : status === 404 ? 'NOT_FOUND' : 'BAD_REQUEST');
      return reply.status(status).send(body(code, error.message));
    }
    request.log.error({ err: error }, 'unhandled error');
    return reply.status(500).send(body('INTERNAL', 'internal error; the server log has the details', { requestId: request.id }));
  });

  app.setNotFoundHandler((request, reply) => {
    return reply.status(404).send(body('NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`));
  });
}

/** Prisma errors a client can cause: missing rows, duplicate names, rows still referenced. */
export function mapPrismaError(error: Prisma.PrismaClientKnownRequestError): ApiError | null {
  switch (error.code) {
    case 'P2025':
      return new ApiError(404, 'NOT_FOUND', 'the resource was not found (it may have just been deleted)');
    case 'P2002': {
      const fields = uniqueFields(error);
      return new ApiError(409, 'CONFLICT', `${fields.length > 0 ? fields.join(', ') : 'a unique value'} is already taken; choose another`, { fields });
    }
    case 'P2028':
      // No connection or transaction slot in time: the server is overloaded, not the request wrong.
      return new ApiError(503, 'SERVICE_UNAVAILABLE', 'the server is busy; retry shortly');
    case 'P2003':
      return new ApiError(409, 'IN_USE', 'other records still refer to this one; remove or reassign them first');
    default:
      return null;
  }
}

function uniqueFields(error: Prisma.PrismaClientKnownRequestError): string[] {
  const meta = error.meta as { target?: unknown; driverAdapterError?: { cause?: { constraint?: { fields?: unknown } } } } | undefined;
  const fromAdapter = meta?.driverAdapterError?.cause?.constraint?.fields;
  if (Array.isArray(fromAdapter)) return fromAdapter.map((f) => String(f).replace(/"/g, ''));
  if (Array.isArray(meta?.target)) return meta.target.map(String);
  return [];
}
