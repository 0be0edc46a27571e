// Slow clients: raw WebSocket clients that complete the Socket.IO handshake, join every
// chat (autoJoin) and then never read a byte (they only answer pings blindly, so the
// heartbeat alone does not drop them), while other users chat with large messages.
// Samples the server's RSS and its connection count every second.
//
// Usage: node slow-client.mjs   (env: CHAT_SERVER_BIN (default target/release/chat-server),
// SLOW_CLIENTS (10), TALKERS (4), DURATION_S (60), BODY_CHARS (7900))

import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { sleep, startServer } from './lib.mjs';

const SLOW = Number(process.env.SLOW_CLIENTS ?? 10);
const TALKERS = Number(process.env.TALKERS ?? 4);
const DURATION_S = Number(process.env.DURATION_S ?? 60);
const BODY = 'x'.repeat(Number(process.env.BODY_CHARS ?? 7900));

/// A masked client text frame (RFC 6455 §5.2).
function frame(text) {
  const payload = Buffer.from(text);
  const mask = randomBytes(4);
  const len = payload.length;
  const head = len < 126 ? Buffer.from([0x81, 0x80 | len]) : Buffer.from([0x81, 0x80 | 126, len >> 8, len & 0xff]);
  const masked = Buffer.alloc(len);
  for (let i = 0; i < len; i++) masked[i] = payload[i] ^ mask[i % 4];
  return Buffer.concat([head, mask, masked]);
}

/// Connects, upgrades, sends the Socket.IO CONNECT with the token, then stops reading.
function neverReader(port, token) {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  socket.on('connect', () => {
    socket.write([
      'GET /socket.io/?EIO=4&transport=websocket HTTP/1.1',
      `Host: 127.0.0.1:${port}`,
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
      'Sec-WebSocket-Version: 13',
      '', ''].join('\r\n'));
    // The server sends nothing we must wait for before our CONNECT packet.
    setTimeout(() => socket.write(frame(`40${JSON.stringify({ token, autoJoin: true })}`)), 200);
    // Read the 101 and the open packet, then never again.
    setTimeout(() => socket.pause(), 400);
  });
  const pong = setInterval(() => socket.write(frame('3')), 10000);
  socket.on('close', () => clearInterval(pong));
  return socket;
}

const server = await startServer({ RATE_LIMIT_MESSAGES: '100000000', EVENT_BURST: '1000000000', EVENT_RATE_PER_SEC: '1000000000' });
try {
  const talkers = Array.from({ length: TALKERS }, (_, i) => `talker-${i}`);
  const slow = Array.from({ length: SLOW }, (_, i) => `slow-${i}`);
  const chat = await server.http(talkers[0], 'POST', '/api/v1/chats', { kind: 'group', memberIds: [...talkers.slice(1), ...slow], title: 'slow' });
  const chatId = chat.body.chat.id;
  const sockets = await Promise.all(talkers.map((u) => server.connect(u)));
  let received = 0;
  for (const s of sockets) s.on('message:new', () => received++);
  const raw = slow.map((u) => neverReader(server.port, server.token(u)));
  await sleep(1500);
  const idleRss = server.rssKb();
  const connectionsAtStart = await server.metric('chat_connections');

  let sent = 0;
  let stopped = false;
  const lanes = sockets.flatMap((s) => [0, 1, 2, 3].map(async () => {
    while (!stopped) {
      const ack = await s.timeout(10000).emitWithAck('message:send', { chatId, body: BODY, clientId: crypto.randomUUID() }).catch(() => null);
      if (ack?.ok) sent++;
    }
  }));
  const samples = [];
  const started = Date.now();
  let allSlowGoneAt = null;
  for (let t = 1; t <= DURATION_S; t++) {
    await sleep(1000);
    const connections = await server.metric('chat_connections');
    const sample = { t, rssKb: server.rssKb(), connections, sent, received };
    samples.push(sample);
    if (allSlowGoneAt === null && SLOW > 0 && connections <= TALKERS) allSlowGoneAt = Math.round((Date.now() - started) / 1000);
    if (t % 5 === 0) console.log(JSON.stringify(sample));
  }
  stopped = true;
  await Promise.race([Promise.all(lanes), sleep(5000)]);
  const rss = samples.map((s) => s.rssKb);
  const result = {
    slowClients: SLOW, talkers: TALKERS, bodyChars: BODY.length, durationS: DURATION_S,
    connectionsAtStart, messagesSent: sent, perSecond: Math.round(sent / DURATION_S),
    rssKb: { idle: idleRss, max: Math.max(...rss), end: rss.at(-1), atHalf: rss[Math.floor(rss.length / 2)] },
    slowClientsDisconnectedAfterS: allSlowGoneAt,
    connectionsAtEnd: samples.at(-1).connections,
  };
  console.log(JSON.stringify(result));
  for (const s of sockets) s.close();
  for (const r of raw) r.destroy();
} finally {
  server.stop();
}
