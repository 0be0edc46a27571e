// The spammer of spam.mjs, in its own process so that its work does not slow the
// measuring process (one Node event loop answering tens of thousands of acks a second
// would delay the other users' clients and count as server latency).
// Usage: node spam-worker.mjs <url> <secret> <chatId> <messageId> <dmPeer> <seconds>
// (env: IN_FLIGHT, SPAM_EVENTS). Prints one JSON line: what the spammer got.

import { randomUUID } from 'node:crypto';
import { io, sleep, tokenFor } from './lib.mjs';

const [url, secret, chatId, messageId, dmPeer, seconds] = process.argv.slice(2);
const IN_FLIGHT = Number(process.env.IN_FLIGHT ?? 100);
const spammer = 'spammer';

function connect() {
  return new Promise((resolve, reject) => {
    const s = io(url, { auth: { token: tokenFor(secret, spammer), autoJoin: true }, transports: ['websocket'], reconnection: false, forceNew: true });
    s.once('connect', () => resolve(s));
    s.once('connect_error', (e) => { s.close(); reject(e); });
  });
}

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
  () => ['chat:create', { kind: 'dm', memberIds: [dmPeer] }],
  () => ['message:send', { chatId: 'no-such-chat', body: 'x', clientId: randomUUID() }],
  () => ['message:send', { nonsense: true }],
];
// SPAM_EVENTS: a comma-separated subset of event names (default: all of them).
const only = process.env.SPAM_EVENTS?.split(',');
if (only) events.splice(0, events.length, ...events.filter((make) => only.includes(make()[0])));

const t0 = Date.now();
setTimeout(() => { spamming = false; }, Number(seconds) * 1000);
const lanes = Array.from({ length: 5 }, async (_, lane) => {
  let n = 0;
  let oversizedDone = false;
  while (spamming) {
    let s;
    try { s = await connect(); } catch (e) { spam.acks[`connect:${e.message}`] = (spam.acks[`connect:${e.message}`] ?? 0) + 1; await sleep(200); continue; }
    spam.reconnects++;
    const gone = new Promise((resolve) => s.once('disconnect', (reason) => { spam.disconnects[reason] = (spam.disconnects[reason] ?? 0) + 1; resolve(); }));
    let inFlight = 0;
    // One oversized packet per lane, first thing on its first connection (a flooding
    // connection is cut off within milliseconds, so later would be never).
    let oversizeAt = oversizedDone ? Infinity : Date.now();
    oversizedDone = true;
    while (spamming && s.connected) {
      if (Date.now() >= oversizeAt) {
        // Bigger than MAX_PAYLOAD_BYTES: the server closes this connection.
        s.emit('message:send', { chatId, body: big, clientId: randomUUID() }, () => {});
        spam.oversizedSent++;
        oversizeAt = Infinity;
      }
      if (inFlight >= IN_FLIGHT) { await sleep(1); continue; }
      if (n % 50 === 0) await new Promise((r) => setImmediate(r));
      const [event, payload] = events[n++ % events.length]();
      spam.emitted++;
      if (event.startsWith('typing:')) {
        // No ack to wait for: hold back while the socket's own send buffer is full.
        s.emit(event, payload);
        while ((s.io.engine?.transport?.ws?.bufferedAmount ?? 0) > 1 << 20) await sleep(1);
        continue;
      }
      inFlight++;
      s.timeout(30000).emit(event, payload, (err, ack) => {
        inFlight--;
        const code = err ? 'timeout' : ack?.ok ? 'ok' : ack?.error;
        spam.acks[`${event}:${code}`] = (spam.acks[`${event}:${code}`] ?? 0) + 1;
      });
    }
    s.close();
    await Promise.race([gone, sleep(1000)]);
  }
});
await Promise.race([Promise.all(lanes), sleep(Number(seconds) * 1000 + 5000)]);
const elapsed = (Date.now() - t0) / 1000;
console.log(JSON.stringify({ ...spam, eventsPerSecond: Math.round(spam.emitted / elapsed), messagesStored: spam.acks['message:send:ok'] ?? 0 }));
process.exit(0);
