/**
 * How errors look on the wire: always `{error: {code, message}}` with the status that fits the
 * MedvaultError code. Unexpected errors are 500 with a generic message (details go to the log).
 */
import { MedvaultError, codes, type ErrorCode } from '@medvault/protocol';

export interface ErrorBody {
  error: { code: string; message: string };
}

const statusOf: Partial<Record<ErrorCode, number>> = {
  [codes.MESSAGE_INVALID]: 400,
  [codes.CONFIG_INVALID]: 400,
  [codes.AUTH_FAILED]: 401,
  [codes.AUTH_FORBIDDEN]: 403,
  [codes.NOT_FOUND]: 404,
  [codes.CONFLICT]: 409,
  [codes.AUTH_LOCKED]: 429,
  [codes.RATE_LIMITED]: 429,
  [codes.TRANSPORT_FAILED]: 503,
};

export function httpStatus(err: MedvaultError): number {
  return statusOf[err.code] ?? 500;
}

export function errorBody(code: string, message: string): ErrorBody {
  return { error: { code, message } };
}

/** Status and body for anything thrown in a handler, including fastify's own errors. */
export function toHttpError(err: unknown): { status: number; body: ErrorBody; internal: boolean } {
  if (err instanceof MedvaultError) {
    const status = httpStatus(err);
    return { status, body: errorBody(err.code, status === 500 ? 'internal error' : err.message), internal: status === 500 };
  }
  const e = err as { statusCode?: number; message?: string; code?: string };
  if (typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    const code = e.statusCode === 404 ? codes.NOT_FOUND : codes.MESSAGE_INVALID;
    return { status: e.statusCode, body: errorBody(code, e.message ?? 'bad request'), internal: false };
  }
  return { status: 500, body: errorBody('MV_ERR_INTERNAL', 'internal error'), internal: true };
}
