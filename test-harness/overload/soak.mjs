// Soak: connect / send / disconnect churn for SOAK_S seconds; the server's RSS at the
// start (after setup, before any churn), every minute, and at the end.
//
// Each worker repeatedly picks a user from a pool, connects (autoJoin), sends a few
// messages to one of the user's chats (a DM or the group), starts and stops typing,
// pings presence, reads a page of history, and disconnects.
//
// Usage: node soak.mjs   (env: CHAT_SERVER_BIN, SOAK_S (600), WORKERS (16), USERS (400),
// DATABASE_URL (optional; SQLite in a temp dir otherwise))

import { randomUUID } from 'node:crypto';
import { sleep, startServer } from './lib.mjs';

const SOAK_S = Number(process.env.SOAK_S ?? 600);
const WORKERS = Number(process.env.WORKERS ?? 16);
const USERS = Number(process.env.USERS ?? 400);

const server = await startServer({ RATE_LIMIT_MESSAGES: '100000000', EVENT_BURST: '1000000000', EVENT_RATE_PER_SEC: '1000000000' });
try {
  const users = Array.from({ length: USERS }, (_, i) => `soak-${i}`);
  const chatsOf = new Map(users.map((u) => [u, []]));
  // DMs between neighbours, and one group of 50.
  for (let i = 0; i < USERS; i += 2) {
    const { body } = await server.http(users[i], 'POST', '/api/v1/chats', { kind: 'dm', memberIds: [users[i + 1]] });
    chatsOf.get(users[i]).push(body.chat.id);
    chatsOf.get(users[i + 1]).push(body.chat.id);
  }
  const group = (await server.http(users[0], 'POST', '/api/v1/chats', { kind: 'group', memberIds: users.slice(1, 50), title: 'soak' })).body.chat.id;
  for (const u of users.slice(0, 50)) chatsOf.get(u).push(group);
  await sleep(1000);
  const startRss = server.rssKb();
  console.log(JSON.stringify({ t: 0, rssKb: startRss }));

  const counts = { connects: 0, connectErrors: 0, sent: 0, sendErrors: 0 };
  const stopAt = Date.now() + SOAK_S * 1000;
  const workers = Array.from({ length: WORKERS }, async (_, w) => {
    let n = w;
    while (Date.now() < stopAt) {
      const user = users[(n = (n * 7 + 13) % USERS)];
      let s;
      try {
        s = await server.connect(user);
        counts.connects++;
      } catch {
        counts.connectErrors++;
        await sleep(100);
        continue;
      }
      const chats = chatsOf.get(user);
      const chatId = chats[n % chats.length];
      s.emit('typing:start', { chatId });
      for (let k = 0; k < 1 + (n % 3); k++) {
        const ack = await s.timeout(10000).emitWithAck('message:send', { chatId, body: `soak ${user} ${k} ${randomUUID()}`, clientId: randomUUID() }).catch(() => null);
        if (ack?.ok) counts.sent++; else counts.sendErrors++;
      }
      s.emit('typing:stop', { chatId });
      await s.timeout(10000).emitWithAck('presence:ping', {}).catch(() => null);
      await s.timeout(10000).emitWithAck('messages:sync', { chatId, afterSeq: 0, limit: 50 }).catch(() => null);
      s.close();
    }
  });
  const samples = [startRss];
  const sampler = (async () => {
    for (let t = 60; t <= SOAK_S; t += 60) {
      await sleep(Math.max(0, stopAt - SOAK_S * 1000 + t * 1000 - Date.now()));
      const rss = server.rssKb();
      samples.push(rss);
      console.log(JSON.stringify({ t, rssKb: rss, ...counts, connections: await server.metric('chat_connections') }));
    }
  })();
  await Promise.all(workers);
  await sampler;
  await sleep(2000);
  const endRss = server.rssKb();
  console.log(JSON.stringify({ soakS: SOAK_S, workers: WORKERS, users: USERS, ...counts,
    rssKb: { start: startRss, afterFirstMinute: samples[1], max: Math.max(...samples, endRss), end: endRss },
    connectionsAtEnd: await server.metric('chat_connections') }));
} finally {
  server.stop();
}
