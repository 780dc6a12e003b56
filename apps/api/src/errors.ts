import type { ApiErrorCode, ValidationIssue } from '@deskpool/protocol';

/** An error whose status, code and message go to the client as they are. */
export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: ApiErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export function notFound(what: string, id: string): ApiError {
  return new ApiError(404, 'NOT_FOUND', `${what} ${id} not found`);
}

export function forbidden(message: string): ApiError {
  return new ApiError(403, 'FORBIDDEN', message);
}

/** A 400 naming one field, for checks zod cannot make alone (references, cross-field rules against stored values). */
export function invalidField(location: ValidationIssue['location'], path: (string | number)[], message: string): ApiError {
  const issue: ValidationIssue = { location, path, message };
  return new ApiError(400, 'VALIDATION_FAILED', `${location}.${path.join('.')}: ${message}`, { issues: [issue] });
}

export function versionConflict(what: string, id: string, expected: number, current: number): ApiError {
  return new ApiError(
    409,
    'VERSION_CONFLICT',
    `${what} ${id} is at version ${current}, not ${expected}: reload it and apply your change again`,
    { expectedVersion: expected, currentVersion: current },
  );
}

export function inUse(message: string, details?: unknown): ApiError {
  return new ApiError(409, 'IN_USE', message, details);
}
