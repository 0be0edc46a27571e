// One user spams every client event from all its sockets (MAX_SOCKETS_PER_USER) while
// other users chat at a human pace; measures the others' ack and delivery latency before
// and during the spam, and what the spammer got (acks by code, disconnects for oversized
// packets). Server limits at their defaults (10 messages / 10 s, 64 KiB payload).
//
// Usage: node spam.mjs   (env: CHAT_SERVER_BIN, USERS (5), PHASE_S (20), IN_FLIGHT (100),
// SPAM_EVENTS (a comma-separated subset of the spammed events; default all))

import { randomUUID } from 'node:crypto';
import { sleep, startServer, summary } from './lib.mjs';

const USERS = Number(process.env.USERS ?? 5);
const PHASE_S = Number(process.env.PHASE_S ?? 20);
const IN_FLIGHT = Number(process.env.IN_FLIGHT ?? 100);

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

  // The spammer: every event, as fast as IN_FLIGHT unanswered events per socket allow.
  const spam = { emitted: 0, acks: {}, oversizedSent: 0, disconnects: {}, reconnects: 0 };
  let spamming = true;
  const big = 'x'.repeat(70 * 1024);
  const events = [
    () => ['message:send', { chatId, body: 'spam', clientId: randomUUID() }],
    () => ['typing:start', { chatId }],
    () => ['typing:stop', { chatId }],
    () => ['presence:ping', {}],
    () => ['receipt:read', { chatId, messageId }],
    () => ['messages:sync', { chatId, afterSeq: 0, limit: 200 }],
    () => ['room:join', { chatId }],
    () => ['chat:create', { kind: 'dm', memberIds: [users[0]] }],
    () => ['message:send', { chatId: 'no-such-chat', body: 'x', clientId: randomUUID() }],
    () => ['message:send', { nonsense: true }],
  ];
  // SPAM_EVENTS: a comma-separated subset of event names (default: all of them).
  const only = process.env.SPAM_EVENTS?.split(',');
  if (only) events.splice(0, events.length, ...events.filter((make) => only.includes(make()[0])));
  const lanes = Array.from({ length: 5 }, async (_, lane) => {
    let n = 0;
    while (spamming) {
      let s;
      try { s = await server.connect(spammer); } catch (e) { spam.acks[`connect:${e.message}`] = (spam.acks[`connect:${e.message}`] ?? 0) + 1; await sleep(200); continue; }
      spam.reconnects++;
      const gone = new Promise((resolve) => s.once('disconnect', (reason) => { spam.disconnects[reason] = (spam.disconnects[reason] ?? 0) + 1; resolve(); }));
      let inFlight = 0;
      let oversizeAt = Date.now() + 2000 + lane * 400;
      while (spamming && s.connected) {
        if (Date.now() > oversizeAt) {
          // Bigger than MAX_PAYLOAD_BYTES: the server closes this connection.
          s.emit('message:send', { chatId, body: big, clientId: randomUUID() }, () => {});
          spam.oversizedSent++;
          oversizeAt = Infinity;
        }
        if (inFlight >= IN_FLIGHT) { await sleep(1); continue; }
        const [event, payload] = events[n++ % events.length]();
        spam.emitted++;
        if (event.startsWith('typing:')) { s.emit(event, payload); continue; }
        inFlight++;
        s.timeout(30000).emit(event, payload, (err, ack) => {
          inFlight--;
          const code = err ? 'timeout' : ack?.ok ? 'ok' : ack?.error;
          spam.acks[`${event}:${code}`] = (spam.acks[`${event}:${code}`] ?? 0) + 1;
        });
        if (n % 50 === 0) await new Promise((r) => setImmediate(r));
      }
      s.close();
      await Promise.race([gone, sleep(1000)]);
    }
  });
  delivery = [];
  const t0 = Date.now();
  const loud = await chatter(phase(PHASE_S));
  spamming = false;
  await Promise.race([Promise.all(lanes), sleep(5000)]);
  const seconds = (Date.now() - t0) / 1000;
  console.log(JSON.stringify({ phase: 'spam', ...loud, deliveryMs: summary(delivery) }));
  const storedBySpammer = spam.acks['message:send:ok'] ?? 0;
  console.log(JSON.stringify({ spammer: { ...spam, eventsPerSecond: Math.round(spam.emitted / seconds), messagesStored: storedBySpammer } }));
  for (const s of sockets) s.close();
} finally {
  server.stop();
}
