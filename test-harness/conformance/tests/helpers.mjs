// Shared helpers for the wire-contract conformance suite (../../../shared/PROTOCOL.md).
//
// Everything a test needs to talk to a host: configuration from the environment, JWT
// minting (honest and forged), socket connections through the official socket.io-client,
// acks with timeouts, an event recorder per socket (waitFor / expectNo / received),
// an HTTP helper, and contract-shape assertions.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { io } from 'socket.io-client';

// --- configuration ----------------------------------------------------------------------

const env = process.env;

function num(name, fallback) {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) {
    throw new Error(`conformance: ${name} must be a non-negative number, got ${JSON.stringify(raw)}`);
  }
  return value;
}

function namespaceOf(raw) {
  const ns = (raw || '/').trim();
  return ns.startsWith('/') ? ns : `/${ns}`;
}

const transports = (env.CHAT_TRANSPORTS || 'websocket,polling')
  .split(',')
  .map((t) => t.trim())
  .filter(Boolean);
for (const t of transports) {
  if (t !== 'websocket' && t !== 'polling') {
    throw new Error(`conformance: CHAT_TRANSPORTS may only list "websocket" and "polling", got ${JSON.stringify(t)}`);
  }
}
const clientTransport = env.CHAT_CLIENT_TRANSPORT || (transports.includes('websocket') ? 'websocket' : 'polling');
if (!transports.includes(clientTransport)) {
  throw new Error(`conformance: CHAT_CLIENT_TRANSPORT=${clientTransport} is not in CHAT_TRANSPORTS=${transports.join(',')}`);
}

// Several processes of one cluster: each new socket and each HTTP call goes to the next
// one in turn, so the clients of one test sit on different processes.
const urls = (env.CHAT_URLS || env.CHAT_URL || 'http://127.0.0.1:3000')
  .split(',')
  .map((u) => u.trim().replace(/\/+$/, ''))
  .filter(Boolean);

export const CFG = Object.freeze({
  url: urls[0],
  urls,
  secret: env.JWT_SECRET,
  namespace: namespaceOf(env.CHAT_NAMESPACE),
  socketPath: env.CHAT_SOCKET_PATH || '/socket.io',
  transports,
  clientTransport,
  maxSockets: num('MAX_SOCKETS_PER_USER', 5),
  rateMessages: num('RATE_LIMIT_MESSAGES', 10),
  rateWindowMs: num('RATE_LIMIT_WINDOW_MS', 10000),
  typingTimeoutMs: num('TYPING_TIMEOUT_MS', 5000),
  presenceThrottleMs: num('PRESENCE_THROTTLE_MS', 2000),
  maxPayloadBytes: num('MAX_PAYLOAD_BYTES', 65536),
  /** Beyond the contract: a server's event pace, when it states one (else null). */
  eventBurst: env.EVENT_BURST ? num('EVENT_BURST', 0) : null,
  eventRatePerSec: env.EVENT_RATE_PER_SEC ? num('EVENT_RATE_PER_SEC', 0) : null,
  /** How long to wait for something that must happen (an ack, an event, a connect). */
  waitMs: num('CHAT_WAIT_MS', 8000),
  /** How long to watch for something that must NOT happen. */
  quietMs: num('CHAT_QUIET_MS', 800),
});

export const hasPolling = CFG.transports.includes('polling');
export const hasWebsocket = CFG.transports.includes('websocket');

/** A generous per-test timeout: every wait inside a test is bounded by CFG.waitMs. */
export const TEST_TIMEOUT = CFG.waitMs * 6 + 30000;

if (!CFG.secret) {
  throw new Error('conformance: JWT_SECRET is not set; the suite needs the server\'s secret to mint tokens (see README.md)');
}

// Fail fast and clearly when nothing listens at CHAT_URL: every test file imports this
// module, so an unreachable host fails each file at once instead of timing out per test.
for (const url of CFG.urls) {
  try {
    await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(Math.min(CFG.waitMs, 5000)) });
  } catch (err) {
    const why = err?.cause?.code || err?.cause?.message || err?.message || String(err);
    throw new Error(`conformance: cannot reach ${url} (${why}); start the host first (see README.md)`);
  }
}

let turn = 0;
/** The base URL for the next socket or HTTP call (round robin over CHAT_URLS). */
export function nextUrl() {
  const url = CFG.urls[turn % CFG.urls.length];
  turn += 1;
  return url;
}

// --- small utilities ---------------------------------------------------------------------

export const uuid = () => randomUUID();
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const UUID7_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;
/** ISO 8601, UTC, millisecond precision: what JavaScript's Date#toISOString produces. */
export const ISO_MS_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const show = (v) => {
  try {
    const s = JSON.stringify(v);
    return s === undefined ? String(v) : s.length > 600 ? `${s.slice(0, 600)}…` : s;
  } catch {
    return String(v);
  }
};
export { show };

/** A unique id for a fresh user of one test. */
export function userId(prefix = 'u') {
  return `${prefix}-${randomBytes(6).toString('hex')}`;
}

// --- JWT -----------------------------------------------------------------------------------

const b64url = (data) => Buffer.from(data).toString('base64url');
export const nowSec = () => Math.floor(Date.now() / 1000);

/**
 * Signs a JWT. `alg` goes into the header; the signature is HMAC with `hash` (defaults to
 * the one matching `alg`), or empty for `alg: "none"`. `header` overrides the whole header.
 */
export function signJwt(claims, { secret = CFG.secret, alg = 'HS256', header, hash } = {}) {
  const head = header ?? { alg, typ: 'JWT' };
  const input = `${b64url(JSON.stringify(head))}.${b64url(JSON.stringify(claims))}`;
  if (alg === 'none' && !hash) return `${input}.`;
  const algo = hash ?? { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' }[alg] ?? 'sha256';
  return `${input}.${createHmac(algo, secret).update(input).digest('base64url')}`;
}

/** An honest HS256 token for `id`, valid for an hour. */
export function tokenFor(id, { role, ttlSec = 3600, claims = {} } = {}) {
  const body = { sub: id, exp: nowSec() + ttlSec, iat: nowSec(), ...claims };
  if (role) body.role = role;
  return signJwt(body);
}

/** A fresh user: `{ id, token }`. */
export function newUser(prefix = 'u', opts = {}) {
  const id = userId(prefix);
  return { id, token: tokenFor(id, opts) };
}

export const idOf = (u) => (typeof u === 'string' ? u : u.id);

// --- sockets ---------------------------------------------------------------------------------

const liveSockets = new Set();

// Last line of defence: whatever a test left open is closed when its file ends.
after(() => closeAll());

export function closeAll() {
  for (const s of liveSockets) {
    try {
      s.disconnect();
    } catch {
      /* ignore */
    }
  }
  liveSockets.clear();
}

function attachRecorder(s) {
  s.log = [];
  s.waiters = new Set();
  s.disconnectReason = null;
  s.onAny((event, ...args) => {
    const entry = { event, payload: args[0], args, at: performance.now(), index: s.log.length };
    s.log.push(entry);
    for (const w of [...s.waiters]) w(entry);
  });
  s.on('disconnect', (reason) => {
    s.disconnectReason = reason;
    for (const w of [...s.waiters]) w({ event: '$disconnect', payload: reason });
  });
}

/**
 * Creates (without connecting) a socket. Options:
 *   token, autoJoin   → handshake `auth` ({ token, autoJoin }) unless `auth` is given
 *   auth              → the raw handshake auth object
 *   headers           → extraHeaders (handshake request headers; also used by ws in Node)
 *   query             → handshake query parameters
 *   transports, upgrade, namespace
 */
export function openSocket(opts = {}) {
  const {
    token,
    autoJoin,
    auth,
    headers,
    query,
    transports: ts = [CFG.clientTransport],
    upgrade = false,
    namespace = CFG.namespace,
  } = opts;
  let handshakeAuth = auth;
  if (handshakeAuth === undefined && (token !== undefined || autoJoin !== undefined)) {
    handshakeAuth = {};
    if (token !== undefined) handshakeAuth.token = token;
    if (autoJoin !== undefined) handshakeAuth.autoJoin = autoJoin;
  }
  const ioOpts = {
    forceNew: true,
    multiplex: false,
    reconnection: false,
    autoConnect: false,
    timeout: CFG.waitMs,
    transports: ts,
    upgrade,
    rememberUpgrade: false,
    path: CFG.socketPath,
  };
  if (handshakeAuth !== undefined) ioOpts.auth = handshakeAuth;
  if (headers) ioOpts.extraHeaders = headers;
  if (query) ioOpts.query = query;
  const s = io(`${nextUrl()}${namespace}`, ioOpts);
  attachRecorder(s);
  liveSockets.add(s);
  return s;
}

/** Connects; resolves `{ socket, error }` — `error` is the connect_error, if any. */
export function tryConnect(opts = {}) {
  const s = openSocket(opts);
  return new Promise((resolve) => {
    let finished = false;
    const done = (error) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      s.off('connect', onConnect);
      s.off('connect_error', onError);
      if (error) {
        s.disconnect();
        liveSockets.delete(s);
      }
      resolve({ socket: s, error });
    };
    const onConnect = () => done(null);
    const onError = (err) => done(err ?? new Error('connect_error without an error'));
    const timer = setTimeout(
      () => done(new Error(`neither connect nor connect_error within ${CFG.waitMs + 2000} ms`)),
      CFG.waitMs + 2000,
    );
    s.on('connect', onConnect);
    s.on('connect_error', onError);
    s.connect();
  });
}

/** Connects a user (a `{ id, token }` or options object); throws on connect_error. */
export async function connect(userOrOpts, more = {}) {
  const opts = userOrOpts && userOrOpts.token && userOrOpts.id ? { token: userOrOpts.token, ...more } : { ...userOrOpts, ...more };
  const { socket, error } = await tryConnect(opts);
  if (error) {
    throw new Error(`connect failed: ${error.message}${error.data ? ` ${show(error.data)}` : ''}`);
  }
  return socket;
}

/** Disconnects and forgets a socket. */
export function disconnect(s) {
  liveSockets.delete(s);
  s.disconnect();
}

/** Index into the socket's event log: pass as `since` to only look at later events. */
export const mark = (s) => s.log.length;

function matches(entry, event, pred) {
  if (entry.event !== event) return false;
  try {
    return !!pred(entry.payload, entry);
  } catch {
    return false;
  }
}

/** Events `event` (payloads) recorded on `s` since `since` that satisfy `pred`. */
export function received(s, event, pred = () => true, since = 0) {
  return s.log.slice(since).filter((e) => matches(e, event, pred)).map((e) => e.payload);
}

/** Like waitFor, but resolves with the log entry ({ event, payload, at, index }). */
export function waitForEntry(s, event, pred = () => true, timeoutMs = CFG.waitMs, { since = 0 } = {}) {
  const hit = s.log.slice(since).find((e) => matches(e, event, pred));
  if (hit) return Promise.resolve(hit);
  return new Promise((resolve, reject) => {
    const waiter = (entry) => {
      if (matches(entry, event, pred)) {
        clearTimeout(timer);
        s.waiters.delete(waiter);
        resolve(entry);
      }
    };
    const timer = setTimeout(() => {
      s.waiters.delete(waiter);
      const seen = s.log.filter((e) => e.event === event).map((e) => e.payload);
      reject(
        new Error(
          `timed out after ${timeoutMs} ms waiting for '${event}' matching the predicate on socket ` +
            `(${s.connected ? 'connected' : `disconnected: ${s.disconnectReason}`}); ` +
            `'${event}' events seen: ${show(seen)}`,
        ),
      );
    }, timeoutMs);
    s.waiters.add(waiter);
  });
}

/**
 * Resolves with the payload of the first `event` on `s` satisfying `pred`. By default the
 * whole history of the socket counts (so an event that arrived before the call is found);
 * pass `{ since: mark(s) }` to look only at later events.
 */
export async function waitFor(s, event, pred = () => true, timeoutMs = CFG.waitMs, opts = {}) {
  return (await waitForEntry(s, event, pred, timeoutMs, opts)).payload;
}

/**
 * Asserts that no `event` satisfying `pred` arrives on `s` within `ms` (counting events
 * since `since`, default the whole history). Fails as soon as one arrives.
 */
export function expectNo(s, event, ms = CFG.quietMs, pred = () => true, { since = 0 } = {}) {
  const hit = s.log.slice(since).find((e) => matches(e, event, pred));
  if (hit) {
    return Promise.reject(new assert.AssertionError({ message: `unexpected '${event}': ${show(hit.payload)}` }));
  }
  return new Promise((resolve, reject) => {
    const waiter = (entry) => {
      if (matches(entry, event, pred)) {
        clearTimeout(timer);
        s.waiters.delete(waiter);
        reject(new assert.AssertionError({ message: `unexpected '${event}': ${show(entry.payload)}` }));
      }
    };
    const timer = setTimeout(() => {
      s.waiters.delete(waiter);
      resolve();
    }, ms);
    s.waiters.add(waiter);
  });
}

/** Resolves when the socket is disconnected (by the server or the transport). */
export function waitDisconnect(s, timeoutMs = CFG.waitMs) {
  if (!s.connected && s.disconnectReason) return Promise.resolve(s.disconnectReason);
  return new Promise((resolve, reject) => {
    const waiter = (entry) => {
      if (entry.event === '$disconnect') {
        clearTimeout(timer);
        s.waiters.delete(waiter);
        resolve(entry.payload);
      }
    };
    const timer = setTimeout(() => {
      s.waiters.delete(waiter);
      reject(new Error(`socket still connected after ${timeoutMs} ms`));
    }, timeoutMs);
    s.waiters.add(waiter);
  });
}

export const NO_PAYLOAD = Symbol('no payload');

/**
 * Emits `event` with `payload` and an ack callback; resolves with the ack (its first
 * argument). Rejects when no ack arrives within `timeoutMs`.
 */
export function call(s, event, payload, timeoutMs = CFG.waitMs) {
  return callTraced(s, event, payload, timeoutMs).then((r) => r.ack);
}

/**
 * Like `call`, but also tells where in the socket's event log the ack landed: `at` is the
 * number of events recorded on `s` when the ack callback ran (so events with
 * `index < at` arrived before the ack).
 */
export function callTraced(s, event, payload, timeoutMs = CFG.waitMs) {
  return new Promise((resolve, reject) => {
    const args = payload === NO_PAYLOAD ? [] : [payload];
    s.timeout(timeoutMs).emit(event, ...args, (err, ack) => {
      if (err) {
        reject(
          new Error(
            `no ack for '${event}' ${show(payload)} within ${timeoutMs} ms ` +
              `(socket ${s.connected ? 'connected' : `disconnected: ${s.disconnectReason}`})`,
          ),
        );
      } else {
        resolve({ ack, at: s.log.length });
      }
    });
  });
}

/** Emits with a callback and asserts that the callback is NOT called within `ms`. */
export function expectNoAck(s, event, payload, ms = CFG.quietMs) {
  return new Promise((resolve, reject) => {
    s.timeout(ms).emit(event, payload, (err, ack) => {
      if (err) resolve();
      else reject(new assert.AssertionError({ message: `'${event}' must never be acked, got ${show(ack)}` }));
    });
  });
}

// --- assertions --------------------------------------------------------------------------------

const sortedKeys = (o) => Object.keys(o).sort();

export function assertKeys(obj, keys, label = 'object') {
  assert.ok(obj && typeof obj === 'object' && !Array.isArray(obj), `${label} must be an object, got ${show(obj)}`);
  assert.deepEqual(sortedKeys(obj), [...keys].sort(), `${label} has keys ${show(sortedKeys(obj))}, expected ${show([...keys].sort())}: ${show(obj)}`);
}

/** Asserts `{ ok: true, data? }` and returns `data`. */
export function assertOk(ack, label = 'ack') {
  assert.ok(ack && typeof ack === 'object', `${label} must be an object, got ${show(ack)}`);
  assert.equal(ack.ok, true, `${label} expected { ok: true }, got ${show(ack)}`);
  for (const k of Object.keys(ack)) {
    assert.ok(k === 'ok' || k === 'data', `${label} has unexpected key '${k}': ${show(ack)}`);
  }
  return ack.data;
}

/** Asserts `{ ok: false, error: code, message, correlationId }`. */
export function assertErr(ack, code, label = 'ack') {
  assert.ok(ack && typeof ack === 'object', `${label} must be an object, got ${show(ack)}`);
  assert.equal(ack.ok, false, `${label} expected ok:false / ${code}, got ${show(ack)}`);
  assert.equal(ack.error, code, `${label} expected error ${code}, got ${show(ack)}`);
  assertKeys(ack, ['ok', 'error', 'message', 'correlationId'], label);
  assert.equal(typeof ack.message, 'string', `${label}.message must be a string: ${show(ack)}`);
  assert.match(String(ack.correlationId), UUID_RE, `${label}.correlationId must be a UUID: ${show(ack)}`);
}

/** Asserts an HTTP error `{ error, message, correlationId }` with `status`. */
export function assertHttpErr(res, status, code, label = 'response') {
  assert.equal(res.status, status, `${label} expected HTTP ${status} ${code}, got ${res.status} ${res.text.slice(0, 400)}`);
  assertKeys(res.body, ['error', 'message', 'correlationId'], `${label} body`);
  assert.equal(res.body.error, code, `${label} expected error ${code}, got ${show(res.body)}`);
  assert.equal(typeof res.body.message, 'string');
  assert.match(String(res.body.correlationId), UUID_RE, `${label} correlationId must be a UUID`);
}

export function assertIsoMs(value, label = 'timestamp') {
  assert.equal(typeof value, 'string', `${label} must be a string, got ${show(value)}`);
  assert.match(value, ISO_MS_RE, `${label} must be ISO 8601 UTC with milliseconds, got ${show(value)}`);
  assert.ok(!Number.isNaN(Date.parse(value)), `${label} must parse as a date: ${value}`);
}

/** An ISO 8601 string close to now (±10 min: host clocks may differ a little). */
export function assertIsoNow(value, label = 'timestamp') {
  assert.equal(typeof value, 'string', `${label} must be an ISO 8601 string, got ${show(value)}`);
  assert.match(value, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/, `${label} must be ISO 8601: ${value}`);
  const t = Date.parse(value);
  assert.ok(Math.abs(t - Date.now()) < 10 * 60 * 1000, `${label} ${value} is not close to now`);
}

/** A timestamp that may be an ISO 8601 string or epoch milliseconds, close to now. */
export function assertTimeNow(value, label = 'timestamp') {
  if (typeof value === 'number') {
    assert.ok(Math.abs(value - Date.now()) < 10 * 60 * 1000, `${label} ${value} (epoch ms) is not close to now`);
  } else {
    assertIsoNow(value, label);
  }
}

export const MESSAGE_KEYS = ['id', 'chatId', 'seq', 'senderId', 'body', 'kind', 'clientId', 'createdAt'];
export const CHAT_KEYS = ['id', 'kind', 'title', 'memberIds', 'createdBy', 'createdAt', 'updatedAt'];

/** Asserts a Message (exact fields and types); `expected` fields must be equal. */
export function assertMessage(m, expected = {}, label = 'message') {
  assertKeys(m, MESSAGE_KEYS, label);
  assert.match(m.id, UUID7_RE, `${label}.id must be a UUIDv7: ${show(m)}`);
  assert.equal(typeof m.chatId, 'string');
  assert.ok(Number.isInteger(m.seq) && m.seq >= 1, `${label}.seq must be an integer >= 1: ${show(m)}`);
  assert.equal(typeof m.senderId, 'string');
  assert.equal(typeof m.body, 'string');
  assert.ok(m.kind === 'text' || m.kind === 'image', `${label}.kind: ${show(m.kind)}`);
  assert.match(m.clientId, UUID_RE);
  assertIsoMs(m.createdAt, `${label}.createdAt`);
  for (const [k, v] of Object.entries(expected)) {
    assert.deepEqual(m[k], v, `${label}.${k}: expected ${show(v)}, got ${show(m[k])}`);
  }
  return m;
}

/** Asserts a Chat (exact fields and types); memberIds compared as a set. */
export function assertChat(c, expected = {}, label = 'chat') {
  assertKeys(c, CHAT_KEYS, label);
  assert.match(c.id, UUID7_RE, `${label}.id must be a UUIDv7: ${show(c)}`);
  assert.ok(c.kind === 'dm' || c.kind === 'group', `${label}.kind: ${show(c.kind)}`);
  assert.ok(c.title === null || typeof c.title === 'string', `${label}.title must be string|null`);
  assert.ok(Array.isArray(c.memberIds) && c.memberIds.every((m) => typeof m === 'string'), `${label}.memberIds`);
  assert.equal(new Set(c.memberIds).size, c.memberIds.length, `${label}.memberIds has duplicates: ${show(c.memberIds)}`);
  assert.equal(typeof c.createdBy, 'string');
  assertIsoNow(c.createdAt, `${label}.createdAt`);
  assertIsoNow(c.updatedAt, `${label}.updatedAt`);
  for (const [k, v] of Object.entries(expected)) {
    if (k === 'memberIds') assertSameSet(c.memberIds, v.map(idOf), `${label}.memberIds`);
    else assert.deepEqual(c[k], v, `${label}.${k}: expected ${show(v)}, got ${show(c[k])}`);
  }
  return c;
}

export function assertSameSet(actual, expected, label = 'set') {
  assert.ok(Array.isArray(actual), `${label} must be an array, got ${show(actual)}`);
  assert.deepEqual([...actual].sort(), [...expected].sort(), `${label}: expected ${show(expected)} in any order, got ${show(actual)}`);
}

// --- HTTP ----------------------------------------------------------------------------------------

/**
 * `fetch` against CHAT_URL. `token` → `Authorization: Bearer`; `body` is sent as JSON,
 * `raw` as is. Resolves `{ status, headers, body (parsed JSON or null), text }`.
 */
export async function http(method, path, { token, body, raw, headers = {}, timeoutMs = CFG.waitMs } = {}) {
  const h = { ...headers };
  if (token !== undefined) h.authorization = `Bearer ${token}`;
  let payload;
  if (raw !== undefined) {
    payload = raw;
    if (!Object.keys(h).some((k) => k.toLowerCase() === 'content-type')) h['content-type'] = 'application/json';
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    h['content-type'] = 'application/json';
  }
  const res = await fetch(`${nextUrl()}${path}`, { method, headers: h, body: payload, signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  return { status: res.status, headers: res.headers, body: json, text };
}

/** POST /api/v1/chats; asserts 200/201 and returns the chat. */
export async function createChat(creator, payload, expectStatus = [200, 201]) {
  const res = await http('POST', '/api/v1/chats', { token: creator.token, body: payload });
  const ok = Array.isArray(expectStatus) ? expectStatus.includes(res.status) : res.status === expectStatus;
  assert.ok(ok, `POST /api/v1/chats ${show(payload)} → ${res.status} ${res.text.slice(0, 400)}`);
  assert.ok(res.body && res.body.chat, `POST /api/v1/chats returned no chat: ${res.text.slice(0, 400)}`);
  return res.body.chat;
}

/** A group created (over HTTP) by `owner` with `members` (users or ids, owner excluded). */
export function createGroup(owner, members, title = `group ${randomBytes(3).toString('hex')}`) {
  return createChat(owner, { kind: 'group', memberIds: members.map(idOf), title }, 201);
}

/** The DM between `a` and `b` (created over HTTP by `a`). */
export function createDm(a, b) {
  return createChat(a, { kind: 'dm', memberIds: [idOf(b)] });
}

/** GET /api/v1/chats for `user`; returns the entries. */
export async function listChats(user) {
  const res = await http('GET', '/api/v1/chats', { token: user.token });
  assert.equal(res.status, 200, `GET /api/v1/chats → ${res.status} ${res.text.slice(0, 300)}`);
  assert.ok(res.body && Array.isArray(res.body.chats), `GET /api/v1/chats body: ${res.text.slice(0, 300)}`);
  return res.body.chats;
}

/** The GET /api/v1/chats entry of `chatId` for `user`. */
export async function chatEntry(user, chatId) {
  const entry = (await listChats(user)).find((e) => e?.chat?.id === chatId);
  assert.ok(entry, `chat ${chatId} not in GET /api/v1/chats of ${user.id}`);
  return entry;
}

// --- chat actions over the socket ------------------------------------------------------------------

/** room:join, asserting success; returns the ack data. */
export async function joinRoom(s, chatId) {
  return assertOk(await call(s, 'room:join', { chatId }), `room:join ${chatId}`);
}

/** message:send with a fresh clientId, asserting success; returns `{ clientId, body, data }`. */
export async function send(s, chatId, body = `hello ${randomBytes(4).toString('hex')}`, extra = {}) {
  const clientId = extra.clientId ?? uuid();
  const ack = await call(s, 'message:send', { chatId, body, clientId, ...extra });
  const data = assertOk(ack, `message:send ${show(body).slice(0, 60)}`);
  return { clientId, body, data };
}

// --- test wrapper ----------------------------------------------------------------------------------

/**
 * Defines a test with a generous timeout and a per-test context that tracks sockets and
 * closes them when the test ends:
 *   c.user(prefix, opts) → { id, token }       fresh, unique user
 *   c.connect(user, opts) → socket              (throws on connect_error)
 *   c.tryConnect(opts)    → { socket, error }
 *   c.group(owner, members, title) / c.dm(a, b) → Chat (over HTTP)
 */
export function spec(name, fn, { timeout = TEST_TIMEOUT, skip } = {}) {
  return test(name, { timeout, skip }, async (t) => {
    const sockets = new Set();
    const track = (s) => (sockets.add(s), s);
    t.after(() => {
      for (const s of sockets) disconnect(s);
    });
    const c = {
      t,
      user: (prefix, opts) => newUser(prefix, opts),
      users: (n, prefix = 'u') => Array.from({ length: n }, (_, i) => newUser(`${prefix}${i}`)),
      connect: async (user, opts = {}) => {
        const r = await tryConnect(user && user.token && user.id ? { token: user.token, ...opts } : { ...user, ...opts });
        track(r.socket);
        if (r.error) throw new Error(`connect of ${user?.id ?? 'socket'} failed: ${r.error.message}${r.error.data ? ` ${show(r.error.data)}` : ''}`);
        return r.socket;
      },
      tryConnect: async (opts) => {
        const r = await tryConnect(opts);
        track(r.socket);
        return r;
      },
      group: createGroup,
      dm: createDm,
    };
    await fn(c, t);
  });
}

/**
 * A group with `count` messages (bodies "m1".."m<count>", seq 1..count), sent one after the
 * other by as many fresh members as the rate limit needs. Returns
 * `{ chat, owner, users, sockets, messages: [{ clientId, body, data }] }`.
 */
export async function seedChat(c, count, { title } = {}) {
  const per = Math.max(1, CFG.rateMessages);
  const n = Math.max(1, Math.ceil(count / per));
  const users = c.users(n, 'seed');
  const [owner, ...rest] = users;
  const chat = await createGroup(owner, rest, title);
  const sockets = [];
  for (const u of users) sockets.push(await c.connect(u));
  const messages = [];
  for (let i = 0; i < count; i++) {
    messages.push(await send(sockets[Math.floor(i / per)], chat.id, `m${i + 1}`));
  }
  return { chat, owner, users, sockets, messages };
}
