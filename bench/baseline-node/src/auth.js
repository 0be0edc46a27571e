// HS256 JWT verification with node:crypto, and where the handshake's token comes from
// (PROTOCOL.md §1): auth.token, then the Authorization header, then the `token` query
// parameter. The first source that is present decides alone: a bad token there is refused
// even if a later source holds a good one.

import { createHmac, timingSafeEqual } from 'node:crypto';
import { unauthorized } from './errors.js';

const MAX_TOKEN_LENGTH = 8192;
const MAX_USER_ID_LENGTH = 128;

const isBlank = (s) => s.trim() === '';

function decodeJsonSegment(segment) {
  if (!/^[A-Za-z0-9_-]+={0,2}$/.test(segment)) throw unauthorized('malformed token');
  let value;
  try {
    value = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
  } catch {
    throw unauthorized('malformed token');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw unauthorized('malformed token');
  return value;
}

/** Length in Unicode scalar values, as the contract counts. */
const codePoints = (s) => {
  let n = 0;
  for (const _ of s) n++;
  return n;
};

export function createVerifier({ secret, leewaySec }) {
  const key = Buffer.from(secret, 'utf8');

  /** Verifies a bare JWT; returns `{ userId, admin }` or throws UNAUTHORIZED. */
  function verify(token) {
    if (token.length > MAX_TOKEN_LENGTH) throw unauthorized('token too long');
    const parts = token.split('.');
    if (parts.length !== 3 || parts[0] === '' || parts[1] === '') throw unauthorized('malformed token');
    const [headerB64, payloadB64, signatureB64] = parts;

    const header = decodeJsonSegment(headerB64);
    if (header.alg !== 'HS256') throw unauthorized('unsupported token algorithm');

    const expected = createHmac('sha256', key).update(`${headerB64}.${payloadB64}`).digest();
    const given = Buffer.from(signatureB64, 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw unauthorized('invalid token signature');
    }

    const claims = decodeJsonSegment(payloadB64);
    const userId = claims.sub ?? claims.id ?? claims.userId;
    if (userId === undefined) throw unauthorized('token has no user id');
    if (typeof userId !== 'string') throw unauthorized('token user id must be a string');
    const length = codePoints(userId);
    if (length === 0 || length > MAX_USER_ID_LENGTH || isBlank(userId)) {
      throw unauthorized('token user id must be 1 to 128 characters');
    }

    const now = Date.now() / 1000;
    if (claims.exp === undefined || claims.exp === null) throw unauthorized('token has no exp');
    if (typeof claims.exp !== 'number') throw unauthorized('token exp must be a number');
    if (now > claims.exp + leewaySec) throw unauthorized('token expired');
    if (claims.nbf !== undefined && claims.nbf !== null) {
      if (typeof claims.nbf !== 'number') throw unauthorized('token nbf must be a number');
      if (now + leewaySec < claims.nbf) throw unauthorized('token not yet valid');
    }
    return { userId, admin: claims.role === 'admin' };
  }

  return { verify };
}

/** "Bearer <jwt>" (scheme case-insensitive) → the jwt, or null. */
function bearer(raw) {
  const match = /^(\S+)\s+(\S.*)$/s.exec(raw.trim());
  if (!match || match[1].toLowerCase() !== 'bearer') return null;
  return match[2].trim();
}

/** The token of a handshake, unverified: `{ token }` or throws UNAUTHORIZED. */
export function handshakeToken(handshake) {
  const auth = handshake.auth;
  const fromAuth = auth && typeof auth === 'object' ? auth.token : undefined;
  if (fromAuth !== undefined && fromAuth !== null) {
    if (typeof fromAuth !== 'string') throw unauthorized('auth.token must be a string');
    if (!isBlank(fromAuth)) return bearer(fromAuth) ?? fromAuth.trim();
  }
  const header = handshake.headers?.authorization;
  if (typeof header === 'string' && !isBlank(header)) {
    const token = bearer(header);
    if (token === null) throw unauthorized('expected a Bearer token');
    return token;
  }
  const query = handshake.query?.token;
  if (typeof query === 'string' && !isBlank(query)) return bearer(query) ?? query.trim();
  throw unauthorized('missing token');
}

/** The token of an HTTP request's `Authorization: Bearer` header, or throws UNAUTHORIZED. */
export function bearerToken(header) {
  if (typeof header !== 'string' || isBlank(header)) throw unauthorized('missing token');
  const token = bearer(header);
  if (token === null) throw unauthorized('expected a Bearer token');
  return token;
}
