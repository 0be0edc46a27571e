// Entry point: one HTTP server carries the Express API and Socket.IO (websocket and
// polling) on the same port. `node src/server.js`, configured by environment variables.

import { createServer } from 'node:http';
import { pathToFileURL } from 'node:url';
import { Server } from 'socket.io';
import { loadConfig } from './config.js';
import { log, setLogLevel } from './log.js';
import { createVerifier } from './auth.js';
import { MemoryStore } from './store.js';
import { SlidingWindowLimiter } from './ratelimit.js';
import { Presence } from './presence.js';
import { Typing } from './typing.js';
import { createMetrics } from './metrics.js';
import { createChatService } from './chats.js';
import { attachChatNamespace, roomsOf, adminView } from './socket.js';
import { createHttpApp } from './http.js';

export function startServer(config) {
  // Socket.IO hooks in front of the request listeners present when it attaches: the
  // API's listener goes in first and reaches the Express app once it is built below.
  let app;
  const httpServer = createServer((req, res) => app(req, res));
  const io = new Server(httpServer, {
    path: '/socket.io',
    serveClient: false,
    transports: ['polling', 'websocket'],
    // Larger packets close a WebSocket and are 413 over polling (PROTOCOL.md §10).
    maxHttpBufferSize: config.maxPayloadBytes,
  });
  const nsp = io.of(config.namespace);
  if (config.namespace !== '/') {
    // The main namespace always exists in Socket.IO: refuse it like any unknown one.
    io.of('/').use((socket, next) => next(new Error('Invalid namespace')));
  }

  const store = new MemoryStore();
  const metrics = createMetrics();
  const verifier = createVerifier({ secret: config.jwtSecret, leewaySec: config.jwtLeewaySec });
  const rooms = roomsOf(nsp);
  const limiter = new SlidingWindowLimiter({ limit: config.rateLimitMessages, windowMs: config.rateLimitWindowMs });
  const presence = new Presence({
    throttleMs: config.presenceThrottleMs,
    contactsOf: (userId) => store.contactsOf(userId),
    broadcast: (userIds, payload) => rooms.toUsers(userIds, 'presence:update', payload),
  });
  const typing = new Typing({
    timeoutMs: config.typingTimeoutMs,
    announce: (chatId, userId, state) => rooms.toChatExceptUser(chatId, userId, 'typing:update', { chatId, userId, state }),
  });
  const chats = createChatService({ store, limiter, rooms, typing, metrics, config });

  attachChatNamespace(nsp, { config, verifier, store, chats, presence, typing, metrics });
  app = createHttpApp({ config, verifier, chats, metrics, adminView: () => adminView(nsp) });

  const listening = new Promise((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(config.port, config.host, () => resolve(httpServer.address()));
  });

  async function close() {
    typing.close();
    presence.close();
    await new Promise((resolve) => io.close(() => resolve()));
  }

  return { io, httpServer, listening, close };
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain) {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    console.error(`chat-baseline-node: ${err.message}`);
    process.exit(2);
  }
  setLogLevel(config.logLevel);
  const { jwtSecret, host, port, ...shown } = config; // the secret is never logged
  const server = startServer(config);
  server.listening.then(
    (address) => log.always('listening', { host: address.address, port: address.port, config: shown, node: process.version }),
    (err) => {
      log.error('cannot listen', { err: err.message });
      process.exit(1);
    },
  );
  const stop = (signal) => {
    log.always('stopping', { signal });
    server.close().then(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
