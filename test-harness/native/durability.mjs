// Durability of the native host: send under load, `kill -9` the server, restart it, and
// check that every acked message is stored exactly once and that retrying any clientId
// acks the same serverId and seq.
//
// Usage: node durability.mjs   (env: CHAT_SERVER_BIN, DATABASE_URL (optional: SQLite in a
// temp dir otherwise), DURABILITY_ROUNDS (default 3), DURABILITY_LOAD_MS (default 1500))

import { spawn } from 'node:child_process';
import { createHmac, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const require = createRequire(new URL('../conformance/package.json', import.meta.url));
const { io } = require('socket.io-client');

const BIN = process.env.CHAT_SERVER_BIN ?? new URL('../../target/debug/chat-server', import.meta.url).pathname;
const ROUNDS = Number(process.env.DURABILITY_ROUNDS ?? 3);
const LOAD_MS = Number(process.env.DURABILITY_LOAD_MS ?? 1500);
const SECRET = `durability-${randomUUID()}`;
// Below the ephemeral range (32768+), where client sockets could already hold the port.
const PORT = 20000 + Math.floor(Math.random() * 10000);
const URL_BASE = `http://127.0.0.1:${PORT}`;
const dataDir = mkdtempSync(join(tmpdir(), 'chat-durability-'));

const b64 = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
function token(sub) {
  const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub, exp: Math.floor(Date.now() / 1000) + 3600 })}`;
  return `${head}.${createHmac('sha256', SECRET).update(head).digest('base64url')}`;
}

let server = null;
async function startServer() {
  const env = { ...process.env, JWT_SECRET: SECRET, BIND: `127.0.0.1:${PORT}`, CHAT_DATA_DIR: dataDir,
    RATE_LIMIT_MESSAGES: '1000000', EVENT_BURST: '1000000000', EVENT_RATE_PER_SEC: '1000000000', RUST_LOG: process.env.RUST_LOG ?? 'error' };
  server = spawn(BIN, ['serve'], { env, stdio: ['ignore', 'inherit', 'inherit'] });
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`${URL_BASE}/healthz`)).ok) return;
    } catch { /* not up yet */ }
    await sleep(50);
  }
  throw new Error('chat-server did not start');
}
function kill9() {
  return new Promise((resolve) => { server.once('exit', resolve); server.kill('SIGKILL'); });
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function connect(user) {
  return new Promise((resolve, reject) => {
    const s = io(URL_BASE, { auth: { token: token(user) }, transports: ['websocket'], reconnection: false, forceNew: true });
    s.once('connect', () => resolve(s));
    s.once('connect_error', (e) => reject(e));
  });
}
async function http(user, method, path, body) {
  const res = await fetch(`${URL_BASE}${path}`, { method, headers: { authorization: `Bearer ${token(user)}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}
async function history(user, chatId) {
  const all = [];
  let after = 0;
  for (;;) {
    const { status, body } = await http(user, 'GET', `/api/v1/chats/${chatId}/messages?afterSeq=${after}&limit=200`);
    if (status !== 200) throw new Error(`history ${status} ${JSON.stringify(body)}`);
    all.push(...body.messages);
    if (!body.hasMore) return all;
    after = body.messages.at(-1).seq;
  }
}

const users = Array.from({ length: 6 }, (_, i) => `dur-${i}-${randomUUID().slice(0, 8)}`);
const acked = new Map(); // clientId -> { sender, chatId, body, serverId, seq }
let attempted = 0;

async function load(chats, ms) {
  const sockets = await Promise.all(users.map(connect));
  const stopAt = Date.now() + ms;
  let stopped = false;
  const senders = sockets.flatMap((s, i) => [0, 1, 2].map(async (lane) => {
    while (!stopped && Date.now() < stopAt) {
      // Users 0 and 1 share the DM too; everyone is in the group.
      const chatId = i < 2 ? chats[(i + lane) % chats.length] : chats[0];
      const clientId = randomUUID();
      const body = `m ${users[i]} ${lane} ${clientId}`;
      attempted++;
      let ack;
      try {
        ack = await s.timeout(5000).emitWithAck('message:send', { chatId, body, clientId });
      } catch { return; }
      if (ack?.ok) acked.set(clientId, { sender: users[i], chatId, body, serverId: ack.data.serverId, seq: ack.data.seq });
    }
  }));
  await sleep(ms);
  // Kill while sends are still in flight.
  await kill9();
  stopped = true;
  for (const s of sockets) s.close();
  await Promise.race([Promise.all(senders), sleep(6000)]);
}

async function verify(chats) {
  const stored = new Map();
  for (const chatId of chats) {
    const messages = await history(users[0], chatId);
    messages.forEach((m, i) => {
      if (m.seq !== i + 1) throw new Error(`chat ${chatId}: seq ${m.seq} at position ${i + 1} (gap or repeat)`);
      if (stored.has(m.id)) throw new Error(`message ${m.id} stored twice`);
      stored.set(m.id, m);
    });
  }
  let lost = 0;
  let wrong = 0;
  for (const [clientId, a] of acked) {
    const m = stored.get(a.serverId);
    if (!m) lost++;
    else if (m.seq !== a.seq || m.clientId !== clientId || m.body !== a.body) wrong++;
  }
  // Retrying every acked clientId acks the same serverId and seq, from a fresh socket.
  const sockets = new Map(await Promise.all(users.map(async (u) => [u, await connect(u)])));
  let retriedSame = 0;
  let retriedDifferent = 0;
  const entries = [...acked.entries()];
  for (let i = 0; i < entries.length; i += 50) {
    await Promise.all(entries.slice(i, i + 50).map(async ([clientId, a]) => {
      const ack = await sockets.get(a.sender).timeout(10000).emitWithAck('message:send', { chatId: a.chatId, body: a.body, clientId });
      if (ack?.ok && ack.data.serverId === a.serverId && ack.data.seq === a.seq) retriedSame++;
      else retriedDifferent++;
    }));
  }
  for (const s of sockets.values()) s.close();
  return { stored: stored.size, lost, wrong, retriedSame, retriedDifferent };
}

let failed = false;
try {
  await startServer();
  const owner = users[0];
  const group = await http(owner, 'POST', '/api/v1/chats', { kind: 'group', memberIds: users.slice(1), title: 'durability' });
  const dm = await http(owner, 'POST', '/api/v1/chats', { kind: 'dm', memberIds: [users[1]] });
  const chats = [group.body.chat.id, dm.body.chat.id];
  for (let round = 1; round <= ROUNDS; round++) {
    await load(chats, LOAD_MS);
    const started = Date.now();
    await startServer();
    const restartMs = Date.now() - started;
    const result = await verify(chats);
    const line = { round, attempted, acked: acked.size, ...result, restartMs };
    console.log(JSON.stringify(line));
    if (result.lost || result.wrong || result.retriedDifferent || acked.size === 0) failed = true;
  }
} catch (error) {
  console.error(error);
  failed = true;
} finally {
  if (server && server.exitCode === null) server.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
}
console.log(failed ? 'durability: FAILED' : 'durability: every acked message survived kill -9, once, and retries acked the same ids');
console.log(failed ? '0 passed, 1 failed' : '1 passed, 0 failed');
process.exit(failed ? 1 : 0);
