// Durability of the edge host across a restart of `wrangler dev` with the same --persist-to:
// every acked message is still there (history over HTTP, seq without gaps), a retried
// clientId acks the same serverId, and the next message continues the sequence.
// wrangler is stopped with SIGKILL on its whole process group (workerd included).
// Env: WRANGLER_BIN, DEV_CONFIG, PERSIST (directory), JWT_SECRET; optional PORT.
import { spawn } from 'node:child_process';
import { createHmac, randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '../conformance/package.json'));
const { io } = require('socket.io-client');

const { WRANGLER_BIN, DEV_CONFIG, PERSIST, JWT_SECRET } = process.env;
if (!WRANGLER_BIN || !DEV_CONFIG || !PERSIST || !JWT_SECRET) throw new Error('WRANGLER_BIN, DEV_CONFIG, PERSIST and JWT_SECRET are required');
// A port nobody holds now (other people's servers run on this machine too).
async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}
const port = Number(process.env.PORT || (await freePort()));
const url = `http://127.0.0.1:${port}`;

function token(sub) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = b64({ alg: 'HS256', typ: 'JWT' });
  const body = b64({ sub, exp: Math.floor(Date.now() / 1000) + 3600 });
  return `${head}.${body}.${createHmac('sha256', JWT_SECRET).update(`${head}.${body}`).digest('base64url')}`;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function start() {
  const child = spawn(WRANGLER_BIN, ['dev', '--config', DEV_CONFIG, '--ip', '127.0.0.1', '--port', String(port), '--persist-to', PERSIST,
    '--inspector-port', '0', '--show-interactive-dev-session=false', '--log-level', 'error', '--var', `JWT_SECRET:${JWT_SECRET}`],
    { detached: true, stdio: ['ignore', 'ignore', 'inherit'] });
  for (let i = 0; i < 300; i++) {
    try { if ((await fetch(`${url}/healthz`)).ok) return child; } catch {}
    await sleep(100);
  }
  throw new Error('wrangler dev did not start');
}
function kill(child) {
  try { process.kill(-child.pid, 'SIGKILL'); } catch {}
}

function connect(user) {
  const s = io(url, { transports: ['websocket'], auth: { token: token(user) }, reconnection: false });
  return new Promise((resolve, reject) => {
    s.once('connect', () => resolve(s));
    s.once('connect_error', reject);
  });
}

const alice = `alice-${randomUUID().slice(0, 8)}`;
const bob = `bob-${randomUUID().slice(0, 8)}`;
let server = await start();
let ok = false;
try {
  const s = await connect(alice);
  const created = await s.timeout(10000).emitWithAck('chat:create', { kind: 'group', memberIds: [bob], title: 'durable' });
  const chatId = created.data.chat.id;
  const acked = [];
  const N = 30;
  await Promise.all(Array.from({ length: N }, async (_, i) => {
    const clientId = randomUUID();
    const ack = await s.timeout(10000).emitWithAck('message:send', { chatId, body: `m${i}`, clientId }).catch(() => null);
    if (ack?.ok) acked.push({ clientId, body: `m${i}`, ...ack.data });
  }));
  // The rate limit (10 per window by default) refuses some: only acked ones must survive.
  console.log(`acked ${acked.length} of ${N} sends; killing wrangler dev (SIGKILL)`);
  kill(server);
  s.close();
  await sleep(500);
  server = await start();
  const res = await fetch(`${url}/api/v1/chats/${chatId}/messages?afterSeq=0&limit=200`, { headers: { authorization: `Bearer ${token(bob)}` } });
  const { messages } = await res.json();
  const seqs = messages.map((m) => m.seq);
  if (seqs.some((seq, i) => seq !== i + 1)) throw new Error(`seq has gaps or repeats after restart: ${seqs}`);
  for (const a of acked) {
    const m = messages.find((x) => x.clientId === a.clientId);
    if (!m || m.id !== a.serverId || m.seq !== a.seq || m.body !== a.body) throw new Error(`acked message lost or changed: ${JSON.stringify(a)}`);
  }
  const again = await connect(alice);
  const retry = await again.timeout(10000).emitWithAck('message:send', { chatId, body: acked[0].body, clientId: acked[0].clientId });
  if (!retry.ok || retry.data.serverId !== acked[0].serverId) throw new Error(`retry after restart: ${JSON.stringify(retry)}`);
  await sleep(Number(process.env.RATE_LIMIT_WINDOW_MS || 10000));
  const next = await again.timeout(10000).emitWithAck('message:send', { chatId, body: 'after restart', clientId: randomUUID() });
  if (!next.ok || next.data.seq !== messages.length + 1) throw new Error(`next send after restart: ${JSON.stringify(next)} (had ${messages.length})`);
  again.close();
  console.log(`durability: ${acked.length} acked messages survived the restart, the retry acked the same serverId, seq continued at ${next.data.seq}`);
  ok = true;
} finally {
  kill(server);
}
process.exit(ok ? 0 : 1);
