// Configuration from the environment, with the same variable names and defaults as the
// native chat-server (README.md "Configuration"), so one set of env drives both.

function int(name, fallback, { min = 0 } = {}) {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < min) {
    throw new Error(`${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

function namespace(raw) {
  const ns = (raw ?? '/').trim() || '/';
  return ns.startsWith('/') ? ns : `/${ns}`;
}

/** `BIND` is `host:port` (default 127.0.0.1:3000); `PORT`, when set, overrides the port. */
function listenAddress() {
  const bind = (process.env.BIND ?? '').trim() || '127.0.0.1:3000';
  const colon = bind.lastIndexOf(':');
  let host = colon > 0 ? bind.slice(0, colon) : bind;
  let port = colon > 0 ? Number(bind.slice(colon + 1)) : 3000;
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (process.env.PORT !== undefined && process.env.PORT.trim() !== '') port = Number(process.env.PORT);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`BIND/PORT must give a port from 0 to 65535, got BIND=${bind} PORT=${process.env.PORT ?? ''}`);
  }
  return { host, port };
}

export function loadConfig() {
  const jwtSecret = process.env.JWT_SECRET ?? '';
  if (jwtSecret === '') throw new Error('JWT_SECRET must be set (the HS256 secret of the tokens)');
  return Object.freeze({
    ...listenAddress(),
    jwtSecret,
    namespace: namespace(process.env.CHAT_NAMESPACE),
    maxSocketsPerUser: int('MAX_SOCKETS_PER_USER', 5, { min: 1 }),
    rateLimitMessages: int('RATE_LIMIT_MESSAGES', 10),
    rateLimitWindowMs: int('RATE_LIMIT_WINDOW_MS', 10000),
    typingTimeoutMs: int('TYPING_TIMEOUT_MS', 5000, { min: 1 }),
    presenceThrottleMs: int('PRESENCE_THROTTLE_MS', 2000),
    maxPayloadBytes: int('MAX_PAYLOAD_BYTES', 65536, { min: 1024 }),
    maxGroupMembers: int('MAX_GROUP_MEMBERS', 1000, { min: 2 }),
    /** Clock leeway for exp/nbf; the contract caps it at 30 s. */
    jwtLeewaySec: Math.min(int('JWT_LEEWAY_SECS', 30), 30),
    logLevel: (process.env.LOG_LEVEL ?? 'info').toLowerCase(),
  });
}
