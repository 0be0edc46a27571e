// One user spams every client event from all its sockets (MAX_SOCKETS_PER_USER) while
// other users chat at a human pace; measures the others' ack and delivery latency before
// and during the spam, and what the spammer got (acks by code, disconnects for oversized
// packets). Server limits at their defaults (10 messages / 10 s, 64 KiB payload).
//
// Usage: node spam.mjs   (env: CHAT_SERVER_BIN, USERS (5), PHASE_S (20), and for the spammer
// (spam-worker.mjs, its own process) IN_FLIGHT (100) and SPAM_EVENTS (a comma-separated
// subset of the spammed events; default all), SPAM_CONTROL=1 (a core burned instead))

import { randomUUID } from 'node:crypto';
import { spawn } from 'node:child_process';
import { sleep, startServer, summary } from './lib.mjs';

const USERS = Number(process.env.USERS ?? 5);
const PHASE_S = Number(process.env.PHASE_S ?? 20);

const server = await startServer();
try {
  const users = Array.from({ length: USERS }, (_, i) => `user-${i}`);
  const spammer = 'spammer';
  const chatId = (await server.http(users[0], 'POST', '/api/v1/chats', { kind: 'group', memberIds: [...users.slice(1), spammer], title: 'spam' })).body.chat.id;
  const sockets = await Promise.all(users.map((u) => server.connect(u)));
  const sentAt = new Map(); // clientId -> send time
  let delivery = [];
  for (const s of sockets) {
    s.on('message:new', (m) => {
      const t = sentAt.get(m.clientId);
      if (t !== undefined && m.senderId !== spammer) delivery.push(performance.now() - t);
    });
  }
  const first = await sockets[0].emitWithAck('message:send', { chatId, body: 'first', clientId: randomUUID() });
  const messageId = first.data.serverId;

  // Others: one message every 1.5 s each (under the rate limit), plus a presence:ping.
  async function chatter(until) {
    const acks = [];
    const pings = [];
    const errors = {};
    await Promise.all(sockets.map(async (s, i) => {
      await sleep(i * 300);
      while (!until()) {
        const clientId = randomUUID();
        const t = performance.now();
        sentAt.set(clientId, t);
        const ack = await s.timeout(30000).emitWithAck('message:send', { chatId, body: `hello from ${users[i]}`, clientId }).catch(() => ({ error: 'TIMEOUT' }));
        if (ack.ok) acks.push(performance.now() - t); else errors[ack.error] = (errors[ack.error] ?? 0) + 1;
        const p = performance.now();
        await s.timeout(30000).emitWithAck('presence:ping', {}).catch(() => null);
        pings.push(performance.now() - p);
        await sleep(1500);
      }
    }));
    return { ackMs: summary(acks), presencePingMs: summary(pings), errors };
  }

  const phase = (s) => ((end) => () => Date.now() > end)(Date.now() + s * 1000);
  delivery = [];
  const quiet = await chatter(phase(PHASE_S));
  console.log(JSON.stringify({ phase: 'quiet', ...quiet, deliveryMs: summary(delivery) }));

  // The spammer, in its own process (spam-worker.mjs): every event, as fast as IN_FLIGHT
  // unanswered events per socket allow, for as long as the loud phase lasts.
  // SPAM_CONTROL=1: instead, a process that only burns a core for the phase, to tell the
  // machine's contention (2 cores) from what the server spends on the spam.
  const burn = `const end = Date.now() + ${PHASE_S * 1000}; while (Date.now() < end); console.log('{"control":"burned a core"}')`;
  const worker = process.env.SPAM_CONTROL === '1'
    ? spawn(process.execPath, ['-e', burn], { stdio: ['ignore', 'pipe', 'inherit'] })
    : spawn(process.execPath, [new URL('./spam-worker.mjs', import.meta.url).pathname,
      server.url, server.secret, chatId, messageId, users[0], String(PHASE_S)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let workerOut = '';
  worker.stdout.on('data', (d) => { workerOut += d; });
  const workerDone = new Promise((resolve) => worker.on('exit', resolve));
  await sleep(500); // let its sockets connect and start
  delivery = [];
  const loud = await chatter(phase(PHASE_S));
  console.log(JSON.stringify({ phase: 'spam', ...loud, deliveryMs: summary(delivery) }));
  await workerDone;
  console.log(JSON.stringify({ spammer: JSON.parse(workerOut.trim() || '{}') }));
  for (const s of sockets) s.close();
} finally {
  server.stop();
}
