// The contract's error codes (PROTOCOL.md §2) and how they travel: as a failure ack over
// Socket.IO, as { error, message, correlationId } with a status over HTTP.

import { randomUUID } from 'node:crypto';
import { log } from './log.js';

export const HTTP_STATUS = Object.freeze({
  VALIDATION_ERROR: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  PAYLOAD_TOO_LARGE: 413,
  RATE_LIMITED: 429,
  TOO_MANY_CONNECTIONS: 429,
  INTERNAL: 500,
});

export class ChatError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

export const validation = (message) => new ChatError('VALIDATION_ERROR', message);
export const unauthorized = (message) => new ChatError('UNAUTHORIZED', message);
export const forbidden = (message) => new ChatError('FORBIDDEN', message);
export const notFound = (message) => new ChatError('NOT_FOUND', message);
export const rateLimited = (message) => new ChatError('RATE_LIMITED', message);

/**
 * Turns any thrown value into the wire error body and logs it with a fresh correlation id.
 * Unexpected errors become INTERNAL and keep their details in the log only.
 */
export function describeFailure(err, context) {
  const correlationId = randomUUID();
  if (err instanceof ChatError) {
    log.info('request failed', { ...context, code: err.code, reason: err.message, correlationId });
    return { error: err.code, message: err.message, correlationId };
  }
  log.error('internal error', { ...context, correlationId, err: err?.stack ?? String(err) });
  return { error: 'INTERNAL', message: 'internal error', correlationId };
}
