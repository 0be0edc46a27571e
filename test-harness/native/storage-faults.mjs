// Storage faults of the native host on PostgreSQL: the database becomes unreachable (a TCP
// proxy between the server and PostgreSQL stops: connections refused, open ones cut), then
// read-only (`default_transaction_read_only`, sessions restarted). In each fault a send
// acks INTERNAL within a bounded time and is not broadcast, typing and presence still
// flow, /healthz is 503; when the database is back the same process serves again.
//
// Usage: node storage-faults.mjs   (env: CHAT_SERVER_BIN, PG_ADMIN_URL (default
// postgres://postgres@127.0.0.1:5432/test, must be reachable with psql))

import { spawn, execFileSync } from 'node:child_process';
import { createHmac, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const require = createRequire(new URL('../conformance/package.json', import.meta.url));
const { io } = require('socket.io-client');

const BIN = process.env.CHAT_SERVER_BIN ?? new URL('../../target/debug/chat-server', import.meta.url).pathname;
const PG_ADMIN_URL = process.env.PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const PG = new URL(PG_ADMIN_URL);
// The server's stated bound (store::OPERATION_TIMEOUT) is 5 s; the check allows slack for
// a loaded machine: it tells "bounded" from "waits forever", it is not a benchmark.
const ACK_BOUND_MS = 15000;
const SECRET = `faults-${randomUUID()}`;
// Below the ephemeral range (32768+), where client sockets could already hold the port.
const PORT = 20000 + Math.floor(Math.random() * 10000);
const URL_BASE = `http://127.0.0.1:${PORT}`;
const DB = `chat_faults_${process.pid}_${Date.now()}`;
const dataDir = mkdtempSync(join(tmpdir(), 'chat-faults-'));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const b64 = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
function token(sub) {
  const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub, exp: Math.floor(Date.now() / 1000) + 3600 })}`;
  return `${head}.${createHmac('sha256', SECRET).update(head).digest('base64url')}`;
}
function psql(sql) {
  return execFileSync('psql', ['-q', '-t', '-A', '-v', 'ON_ERROR_STOP=1', PG_ADMIN_URL, '-c', sql], { encoding: 'utf8' }).trim();
}

// A TCP proxy in front of PostgreSQL that the test can stop (refuse and cut) and restart.
class Proxy {
  constructor() { this.conns = new Set(); this.server = null; this.port = 0; }
  listen(port = 0) {
    this.server = net.createServer((client) => {
      const upstream = net.connect(Number(PG.port || 5432), PG.hostname);
      for (const s of [client, upstream]) {
        this.conns.add(s);
        s.on('error', () => { client.destroy(); upstream.destroy(); });
        s.on('close', () => { this.conns.delete(s); client.destroy(); upstream.destroy(); });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => { this.port = this.server.address().port; resolve(); });
    });
  }
  stop() {
    const closed = new Promise((resolve) => this.server.close(resolve));
    for (const s of this.conns) s.destroy();
    return closed;
  }
}

function connect(user) {
  return new Promise((resolve, reject) => {
    const s = io(URL_BASE, { auth: { token: token(user), autoJoin: true }, transports: ['websocket'], reconnection: false, forceNew: true });
    s.events = [];
    s.onAny((event, payload) => s.events.push({ event, payload, at: Date.now() }));
    s.once('connect', () => resolve(s));
    s.once('connect_error', (e) => { s.close(); reject(e); });
  });
}
async function http(user, method, path, body) {
  const res = await fetch(`${URL_BASE}${path}`, { method, headers: { authorization: `Bearer ${token(user)}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}
async function timed(fn) {
  const started = Date.now();
  const value = await fn();
  return { value, ms: Date.now() - started };
}
async function healthz() {
  return timed(async () => (await fetch(`${URL_BASE}/healthz`)).status);
}
async function waitFor(what, predicate, ms = 5000) {
  const stopAt = Date.now() + ms;
  while (Date.now() < stopAt) {
    if (predicate()) return true;
    await sleep(20);
  }
  throw new Error(`timed out waiting for ${what}`);
}

const results = [];
let failures = 0;
function check(name, ok, figure) {
  results.push({ check: name, ok, ...figure });
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${figure ? ` ${JSON.stringify(figure)}` : ''}`);
  if (!ok) failures++;
}

const [alice, bob, carol] = ['alice', 'bob', 'carol'].map((u) => `${u}-${randomUUID().slice(0, 8)}`);
const acked = new Set(); // bodies acked ok
const refused = new Set(); // bodies acked with an error

async function send(socket, chatId, body) {
  const { value: ack, ms } = await timed(() => socket.timeout(60000).emitWithAck('message:send', { chatId, body, clientId: randomUUID() }));
  if (ack?.ok) acked.add(body); else refused.add(body);
  return { ack, ms };
}

// Storage is down: what must still hold.
async function whileDown(fault, sockets, chatId) {
  const { a, b, c } = sockets;
  const health = await healthz();
  check(`${fault}: /healthz is 503`, health.value === 503, { status: health.value, ms: health.ms });

  const body = `${fault} while down ${randomUUID()}`;
  const sent = await send(a, chatId, body);
  check(`${fault}: message:send acks INTERNAL within ${ACK_BOUND_MS} ms`, sent.ack?.ok === false && sent.ack.error === 'INTERNAL' && sent.ms <= ACK_BOUND_MS,
    { error: sent.ack?.error, ackMs: sent.ms });
  await sleep(500);
  const leaked = [a, b].flatMap((s) => s.events).filter((e) => e.event === 'message:new' && e.payload?.body === body);
  check(`${fault}: the refused message is broadcast to nobody`, leaked.length === 0, { broadcasts: leaked.length });

  const typingFrom = b.events.length;
  a.emit('typing:start', { chatId });
  const typing = await timed(() => waitFor('typing:update', () => b.events.slice(typingFrom).some((e) => e.event === 'typing:update' && e.payload?.userId === alice && e.payload.state === 'start')).catch(() => false));
  check(`${fault}: typing:start still reaches the other members`, typing.value === true, { ms: typing.ms });
  a.emit('typing:stop', { chatId });

  const presenceFrom = a.events.length;
  c.close();
  const presence = await timed(() => waitFor('presence:update offline', () => a.events.slice(presenceFrom).some((e) => e.event === 'presence:update' && e.payload?.userId === carol && e.payload.status === 'offline')).catch(() => false));
  check(`${fault}: presence (a member goes offline) still reaches contacts`, presence.value === true, { ms: presence.ms });

  const ping = await timed(() => a.timeout(5000).emitWithAck('presence:ping', {}).catch(() => null));
  check(`${fault}: presence:ping still answers`, ping.value?.ok === true, { ms: ping.ms });
}

// Storage is back: the same process serves everything again.
async function afterRecovery(fault, sockets, chatId, downAt) {
  let health;
  for (;;) {
    health = await healthz();
    if (health.value === 200 || Date.now() - downAt > 30000) break;
    await sleep(100);
  }
  check(`${fault}: /healthz is 200 again`, health.value === 200, { sinceRestoredMs: Date.now() - downAt });
  const { a, b } = sockets;
  // The first send after the fault reloads the chat; allow it one INTERNAL if it raced the pool.
  let sent;
  const body = `${fault} after ${randomUUID()}`;
  for (let attempt = 0; attempt < 3; attempt++) {
    sent = await send(a, chatId, body);
    if (sent.ack?.ok) break;
    await sleep(500);
  }
  check(`${fault}: message:send acks ok again`, sent.ack?.ok === true, { ackMs: sent.ms, error: sent.ack?.error });
  const got = await waitFor('message:new', () => b.events.some((e) => e.event === 'message:new' && e.payload?.body === body)).catch(() => false);
  check(`${fault}: and is broadcast`, got === true);
  const c = await connect(carol).catch((e) => e);
  check(`${fault}: a new connection is accepted`, !(c instanceof Error), c instanceof Error ? { error: c.message } : undefined);
  return c instanceof Error ? null : c;
}

let server = null;
let proxy = null;
try {
  psql(`CREATE DATABASE ${DB}`);
  proxy = new Proxy();
  await proxy.listen();
  const env = { ...process.env, JWT_SECRET: SECRET, BIND: `127.0.0.1:${PORT}`, CHAT_DATA_DIR: dataDir,
    DATABASE_URL: `postgres://${PG.username || 'postgres'}@127.0.0.1:${proxy.port}/${DB}`,
    PRESENCE_THROTTLE_MS: '100', RUST_LOG: process.env.RUST_LOG ?? 'error' };
  server = spawn(BIN, ['serve'], { env, stdio: ['ignore', 'inherit', 'inherit'] });
  let up = false;
  for (let i = 0; i < 300 && !up; i++) {
    try { up = (await fetch(`${URL_BASE}/healthz`)).ok; } catch { await sleep(50); }
  }
  if (!up) throw new Error('chat-server did not start');

  const created = await http(alice, 'POST', '/api/v1/chats', { kind: 'group', memberIds: [bob, carol], title: 'faults' });
  const chatId = created.body.chat.id;
  const sockets = { a: await connect(alice), b: await connect(bob), c: await connect(carol) };
  const first = await send(sockets.a, chatId, `before ${randomUUID()}`);
  check('healthy: message:send acks ok', first.ack?.ok === true, { ackMs: first.ms });

  // Fault 1: unreachable (connections refused, open ones cut).
  await proxy.stop();
  await whileDown('unreachable', sockets, chatId);
  const history = await timed(() => http(alice, 'GET', `/api/v1/chats/${chatId}/messages?limit=50`));
  check('unreachable: HTTP history answers 500 INTERNAL within the bound', history.value.status === 500 && history.ms <= ACK_BOUND_MS,
    { status: history.value.status, ms: history.ms });
  const connecting = await timed(() => connect(carol).then((s) => { s.close(); return 'connected'; }, (e) => e.message));
  check('unreachable: a new connection is refused with INTERNAL (its user cannot be loaded)', connecting.value === 'INTERNAL', { result: connecting.value, ms: connecting.ms });
  let restoredAt = Date.now();
  await proxy.listen(proxy.port);
  sockets.c = await afterRecovery('unreachable', sockets, chatId, restoredAt);

  // Fault 2: read-only. New sessions are read-only; the open ones are ended so they reconnect.
  psql(`ALTER DATABASE ${DB} SET default_transaction_read_only = on`);
  psql(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '${DB}' AND pid <> pg_backend_pid()`);
  if (!sockets.c) sockets.c = await connect(carol);
  await whileDown('read-only', sockets, chatId);
  const readable = await timed(() => http(alice, 'GET', `/api/v1/chats/${chatId}/messages?limit=50`));
  check('read-only: HTTP history is still served', readable.value.status === 200, { status: readable.value.status, ms: readable.ms });
  // Sessions keep the setting they started with: a real failover ends them too.
  psql(`ALTER DATABASE ${DB} RESET default_transaction_read_only`);
  psql(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '${DB}' AND pid <> pg_backend_pid()`);
  restoredAt = Date.now();
  sockets.c = await afterRecovery('read-only', sockets, chatId, restoredAt);

  // Nothing refused was stored; everything acked was, once.
  const stored = (await http(alice, 'GET', `/api/v1/chats/${chatId}/messages?limit=200`)).body.messages.map((m) => m.body);
  const storedSet = new Set(stored);
  check('storage holds every acked message once and no refused one',
    stored.length === storedSet.size && [...acked].every((b) => storedSet.has(b)) && [...refused].every((b) => !storedSet.has(b)),
    { acked: acked.size, refused: refused.size, stored: stored.length });
  for (const s of Object.values(sockets)) s?.close();
} catch (error) {
  console.error(error);
  failures++;
} finally {
  if (server && server.exitCode === null) server.kill('SIGKILL');
  if (proxy?.server?.listening) await proxy.stop();
  try { psql(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`); } catch (e) { console.error(`could not drop ${DB}: ${e.message}`); }
  rmSync(dataDir, { recursive: true, force: true });
}
const passed = results.filter((r) => r.ok).length;
console.log(`${passed} passed, ${failures} failed`);
process.exit(failures ? 1 : 0);
