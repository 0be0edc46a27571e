// Cluster failure test: three chat-server processes on one Postgres and one Redis, a
// steady send load spread over them, `kill -9` of one process mid-load. Its clients
// reconnect to the others and catch up with messages:sync; senders retry unacked
// clientIds. Then the killed process restarts and must rejoin cleanly.
//
// Checks, at the end:
// - every acked message is stored exactly once (by serverId and by sender + clientId);
// - every retry of a clientId acked the same serverId and seq;
// - each chat's seq runs 1..N with no gap and no two messages share a seq;
// - every client that stayed a member holds every message of its chats, in seq order,
//   with no gap (live events + catch-up), and never received one seq twice on a socket;
// - after the restart, a client on the restarted process sends and receives.
//
// Usage: node failover.mjs
// env: CHAT_SERVER_BIN, DATABASE_URL (Postgres, a fresh database), REDIS_URL,
//      CHAT_CLUSTER_PREFIX (a fresh prefix), FAILOVER_LOAD_MS (default 3000 before and after the kill)

import { spawn } from 'node:child_process';
import { createHmac, randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';

const require = createRequire(new URL('../conformance/package.json', import.meta.url));
const { io } = require('socket.io-client');

const BIN = process.env.CHAT_SERVER_BIN ?? new URL('../../target/debug/chat-server', import.meta.url).pathname;
const LOAD_MS = Number(process.env.FAILOVER_LOAD_MS ?? 3000);
const SECRET = `failover-${randomUUID()}`;
// Free ports, as the kernel hands them out (other test runs may share the machine).
async function freePort() {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => { const { port } = probe.address(); probe.close(() => resolve(port)); });
  });
}
const PORTS = [await freePort(), await freePort(), await freePort()];
const urlOf = (i) => `http://127.0.0.1:${PORTS[i]}`;
const ACK_TIMEOUT_MS = 2500;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const t0 = Date.now();
const phase = (what) => console.error(`failover +${((Date.now() - t0) / 1000).toFixed(1)}s: ${what}`);
const fail = (why) => { throw new Error(why); };

for (const name of ['DATABASE_URL', 'REDIS_URL', 'CHAT_CLUSTER_PREFIX']) {
  if (!process.env[name]) fail(`failover: ${name} is not set`);
}

const b64 = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
function token(sub) {
  const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub, exp: Math.floor(Date.now() / 1000) + 3600 })}`;
  return `${head}.${createHmac('sha256', SECRET).update(head).digest('base64url')}`;
}

// --- processes -----------------------------------------------------------------------------

const servers = [null, null, null];
async function start(i) {
  const env = { ...process.env, JWT_SECRET: SECRET, BIND: `127.0.0.1:${PORTS[i]}`,
    RATE_LIMIT_MESSAGES: '1000000', EVENT_BURST: '1000000000', EVENT_RATE_PER_SEC: '1000000000', RUST_LOG: process.env.RUST_LOG ?? 'warn' };
  const child = spawn(BIN, ['serve'], { env, stdio: ['ignore', 'inherit', 'inherit'] });
  servers[i] = child;
  for (let n = 0; n < 300; n++) {
    try {
      if ((await fetch(`${urlOf(i)}/healthz`)).ok) return;
    } catch { /* not up yet */ }
    if (child.exitCode !== null) fail(`chat-server ${i} exited with ${child.exitCode}`);
    await sleep(50);
  }
  fail(`chat-server ${i} did not start`);
}
function kill9(i) {
  return new Promise((resolve) => { servers[i].once('exit', resolve); servers[i].kill('SIGKILL'); servers[i] = null; });
}
const alive = () => [0, 1, 2].filter((i) => servers[i] !== null);
// Whatever happens to this script, its servers go with it.
process.on('exit', () => { for (const child of servers) child?.kill('SIGKILL'); });

async function http(user, method, path, body, at = alive()[0]) {
  const res = await fetch(`${urlOf(at)}${path}`, { method,
    headers: { authorization: `Bearer ${token(user)}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(10000) });
  return { status: res.status, body: await res.json() };
}
async function history(user, chatId) {
  const all = [];
  let after = 0;
  for (;;) {
    const { status, body } = await http(user, 'GET', `/api/v1/chats/${chatId}/messages?afterSeq=${after}&limit=200`);
    if (status !== 200) fail(`history ${status} ${JSON.stringify(body)}`);
    all.push(...body.messages);
    if (!body.hasMore) return all;
    after = body.messages.at(-1).seq;
  }
}

// --- clients ---------------------------------------------------------------------------------

const problems = [];
const seqOwner = new Map(); // `${chatId}:${seq}` -> serverId, from everything any client saw

function noteMessage(m) {
  const key = `${m.chatId}:${m.seq}`;
  const known = seqOwner.get(key);
  if (known && known !== m.id) problems.push(`two messages share seq ${m.seq} in ${m.chatId}: ${known} and ${m.id}`);
  seqOwner.set(key, m.id);
}

/** One user's client: one socket at a time, rooms rejoined and history caught up on reconnect. */
class Client {
  constructor(user, home, chats) {
    this.user = user;
    this.home = home;
    this.chats = chats;
    this.seen = new Map(chats.map((c) => [c, new Map()])); // chatId -> seq -> serverId
    this.liveSeqs = new Map(); // per socket generation: `${gen}:${chat}:${seq}`
    this.gen = 0;
    this.socket = null;
    this.reconnects = [];
  }

  /** Connects and joins, retrying (a partition may be moving between processes) for up to 30 s. */
  async connect(at) {
    const deadline = Date.now() + 30000;
    for (;;) {
      try {
        return await this.connectOnce(at);
      } catch (error) {
        if (process.env.FAILOVER_DEBUG) phase(`${this.user} connect to ${at}: ${error?.message ?? error}`);
        this.socket?.disconnect();
        if (Date.now() > deadline) fail(`${this.user} could not connect to process ${at}: ${error?.message ?? error}`);
        await sleep(300);
      }
    }
  }

  async connectOnce(at) {
    this.gen += 1;
    const gen = this.gen;
    const socket = io(urlOf(at), { auth: { token: token(this.user) }, transports: ['websocket'],
      reconnection: false, forceNew: true, timeout: 5000 });
    this.socket = socket;
    // socket.io-client bounds the transport's opening, not the namespace's answer.
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no CONNECT answer')), 6000);
      socket.once('connect', () => { clearTimeout(timer); resolve(); });
      socket.once('connect_error', (error) => { clearTimeout(timer); reject(error); });
    });
    socket.on('message:new', (m) => {
      const key = `${gen}:${m.chatId}:${m.seq}`;
      if (this.liveSeqs.has(key)) problems.push(`${this.user} received seq ${m.seq} of ${m.chatId} twice on one socket`);
      this.liveSeqs.set(key, true);
      this.record(m);
    });
    this.socket = socket;
    this.at = at;
    for (const chatId of this.chats) {
      const ack = await socket.timeout(ACK_TIMEOUT_MS * 2).emitWithAck('room:join', { chatId });
      if (!ack?.ok && ack?.error !== 'INTERNAL') fail(`${this.user} room:join ${chatId}: ${JSON.stringify(ack)}`);
      if (!ack?.ok) throw new Error(`room:join ${chatId}: ${JSON.stringify(ack)}`);
    }
    return socket;
  }

  record(m) {
    noteMessage(m);
    const seqs = this.seen.get(m.chatId);
    if (!seqs) return;
    const known = seqs.get(m.seq);
    if (known && known !== m.id) problems.push(`${this.user} saw two messages with seq ${m.seq}`);
    seqs.set(m.seq, m.id);
  }

  /** Everything after the highest seq held with no gap below it. */
  async catchUp() {
    const deadline = Date.now() + 30000;
    for (;;) {
      try {
        return await this.catchUpOnce();
      } catch (error) {
        if (Date.now() > deadline) fail(`${this.user} could not catch up: ${error?.message ?? error}`);
        await sleep(300);
      }
    }
  }

  async catchUpOnce() {
    for (const chatId of this.chats) {
      const seqs = this.seen.get(chatId);
      let after = 0;
      while (seqs.has(after + 1)) after += 1;
      for (;;) {
        const ack = await this.socket.timeout(ACK_TIMEOUT_MS * 2).emitWithAck('messages:sync', { chatId, afterSeq: after, limit: 200 });
        if (!ack?.ok && ack?.error !== 'INTERNAL') fail(`${this.user} messages:sync: ${JSON.stringify(ack)}`);
        if (!ack?.ok) throw new Error(`messages:sync: ${JSON.stringify(ack)}`);
        for (const m of ack.data.messages) this.record(m);
        if (!ack.data.hasMore) break;
        after = ack.data.messages.at(-1).seq;
      }
    }
  }

  /** Reconnects to the next live process, rejoins, catches up; returns the time it took. */
  async recover() {
    const started = Date.now();
    const live = alive();
    const at = live[(live.indexOf(this.at) + 1) % live.length] ?? live[0];
    await this.connect(at);
    await this.catchUp();
    const ms = Date.now() - started;
    this.reconnects.push(ms);
    return ms;
  }
}

// --- load --------------------------------------------------------------------------------------

const acked = new Map(); // clientId -> { sender, chatId, serverId, seq }
let attempts = 0;
let retries = 0;

async function sendUntilAcked(client, chatId, clientId, deadline) {
  const body = `m-${clientId.slice(0, 8)}`;
  for (;;) {
    attempts += 1;
    let ack = null;
    try {
      if (client.socket?.connected) {
        ack = await client.socket.timeout(ACK_TIMEOUT_MS).emitWithAck('message:send', { chatId, body, clientId });
      }
    } catch { /* timed out: retry with the same clientId */ }
    if (ack?.ok) {
      const before = acked.get(clientId);
      if (before && (before.serverId !== ack.data.serverId || before.seq !== ack.data.seq)) {
        problems.push(`clientId ${clientId} acked ${before.serverId}/${before.seq} then ${ack.data.serverId}/${ack.data.seq}`);
      }
      acked.set(clientId, { sender: client.user, chatId, serverId: ack.data.serverId, seq: ack.data.seq });
      return;
    }
    if (ack && !ack.ok && ack.error !== 'INTERNAL') fail(`send refused: ${JSON.stringify(ack)}`);
    if (Date.now() > deadline) fail(`clientId ${clientId} never acked (last answer ${JSON.stringify(ack)})`);
    retries += 1;
    await sleep(200);
  }
}

async function senderLoop(client, chats, until, sentIds) {
  let n = 0;
  while (Date.now() < until.at) {
    const chatId = chats[n % chats.length];
    n += 1;
    const clientId = randomUUID();
    sentIds.push(clientId);
    await sendUntilAcked(client, chatId, clientId, Date.now() + 30000);
    await sleep(40);
  }
}

// --- the run ------------------------------------------------------------------------------------

const summary = {};
try {
  await Promise.all([0, 1, 2].map(start));
  phase('three processes up');
  await sleep(1500); // every process sees the other two

  const users = Array.from({ length: 9 }, (_, i) => `fo-${i}-${randomUUID().slice(0, 6)}`);
  const created = await http(users[0], 'POST', '/api/v1/chats', { kind: 'group', memberIds: users.slice(1), title: 'failover' }, 0);
  if (created.status !== 201) fail(`group: ${created.status} ${JSON.stringify(created.body)}`);
  const group = created.body.chat.id;
  const dms = [];
  for (let i = 0; i < users.length; i += 2) {
    const other = users[(i + 1) % users.length];
    const dm = await http(users[i], 'POST', '/api/v1/chats', { kind: 'dm', memberIds: [other] }, i % 3);
    if (dm.status !== 201 && dm.status !== 200) fail(`dm: ${dm.status} ${JSON.stringify(dm.body)}`);
    dms.push({ id: dm.body.chat.id, members: [users[i], other] });
  }
  const chatsOf = (user) => [group, ...dms.filter((d) => d.members.includes(user)).map((d) => d.id)];
  const clients = users.map((user, i) => new Client(user, i % 3, chatsOf(user)));
  await Promise.all(clients.map((c) => c.connect(c.home)));
  phase(`${clients.length} clients connected; load starts`);

  const until = { at: Date.now() + 2 * LOAD_MS + 4000 };
  const sentIds = [];
  const senders = clients.map((c) => senderLoop(c, c.chats, until, sentIds).catch((error) => {
    problems.push(`${c.user}: ${error?.message ?? error}`);
  }));

  await sleep(LOAD_MS);
  const victim = 2;
  const killedAt = Date.now();
  const orphans = clients.filter((c) => c.at === victim);
  await kill9(victim);
  phase(`killed process ${victim}`);
  summary.killed = `process ${victim} (port ${PORTS[victim]}) with ${orphans.length} clients`;
  // Socket.IO notices the dead TCP connection at once; reconnect those clients elsewhere.
  const recoveries = await Promise.all(orphans.map(async (c) => {
    while (c.socket?.connected) await sleep(20);
    if (process.env.FAILOVER_DEBUG) phase(`${c.user} saw the disconnect`);
    return c.recover();
  }));
  phase('its clients reconnected and caught up');
  summary.reconnectAndCatchUpMs = { max: Math.max(...recoveries), all: recoveries, sinceKillMs: Date.now() - killedAt };

  await sleep(LOAD_MS);
  // Restart the killed process: a new process id, it must take its share back cleanly.
  await start(victim);
  phase('restarted it');
  const restartedAt = Date.now();
  await sleep(1500);
  const newcomer = new Client(users[0], victim, chatsOf(users[0]));
  await newcomer.connect(victim);
  await sleep(500);
  until.at = Date.now();
  await Promise.all(senders);
  phase('load stopped, every send acked');
  summary.restartRejoinMs = Date.now() - restartedAt;

  // One message through the restarted process, seen live by a client on another process.
  const probe = randomUUID();
  const watcher = clients.find((c) => c.at !== victim && c.chats.includes(group));
  const heard = new Promise((resolve) => watcher.socket.on('message:new', (m) => m.clientId === probe && resolve(m)));
  await sendUntilAcked(newcomer, group, probe, Date.now() + 15000);
  await Promise.race([heard, sleep(5000).then(() => fail('a message sent through the restarted process did not reach another process'))]);
  sentIds.push(probe);

  await sleep(500);
  for (const c of clients) await c.catchUp();
  phase('final catch-up done; checking storage');

  // Storage: every acked message once, seq gap-free, no duplicate.
  const stored = new Map();
  const chats = [group, ...dms.map((d) => d.id)];
  let storedCount = 0;
  for (const chatId of chats) {
    const member = chatId === group ? users[0] : dms.find((d) => d.id === chatId).members[0];
    const messages = await history(member, chatId);
    storedCount += messages.length;
    messages.forEach((m, i) => {
      if (m.seq !== i + 1) problems.push(`chat ${chatId}: seq ${m.seq} at position ${i + 1} (a gap or a duplicate)`);
      const key = `${m.senderId}:${m.clientId}`;
      if (stored.has(key)) problems.push(`clientId ${m.clientId} stored twice`);
      stored.set(key, m);
      noteMessage(m);
    });
    // Every client of that chat holds all of it, in order.
    for (const c of clients.filter((c) => c.chats.includes(chatId))) {
      const seqs = c.seen.get(chatId);
      for (const m of messages) {
        if (seqs.get(m.seq) !== m.id) problems.push(`${c.user} misses seq ${m.seq} of ${chatId}`);
      }
      if (seqs.size !== messages.length) problems.push(`${c.user} holds ${seqs.size} messages of ${chatId}, stored ${messages.length}`);
    }
  }
  let lost = 0;
  for (const [clientId, a] of acked) {
    const m = stored.get(`${a.sender}:${clientId}`);
    if (!m) { lost += 1; problems.push(`acked ${clientId} is not stored`); continue; }
    if (m.id !== a.serverId || m.seq !== a.seq) problems.push(`acked ${clientId} as ${a.serverId}/${a.seq}, stored ${m.id}/${m.seq}`);
  }
  Object.assign(summary, { sent: sentIds.length, attempts, retries, acked: acked.size, stored: storedCount, lost, problems: problems.length });
  for (const c of [...clients, newcomer]) c.socket?.disconnect();
} catch (error) {
  problems.push(String(error?.stack ?? error));
} finally {
  for (const i of alive()) servers[i]?.kill('SIGTERM');
}

console.log(JSON.stringify(summary));
if (problems.length > 0) {
  console.error(`failover: ${problems.length} problem(s):\n- ${problems.slice(0, 30).join('\n- ')}`);
  process.exit(1);
}
console.log('failover: OK');
