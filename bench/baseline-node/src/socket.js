// The chat namespace: handshake authentication, the socket cap, the rooms joined on
// connect, and one handler per client event (PROTOCOL.md §1–§3).

import { ChatError, describeFailure } from './errors.js';
import { handshakeToken } from './auth.js';
import * as validate from './validation.js';

const userRoom = (userId) => `user:${userId}`;
const chatRoom = (chatId) => `chat:${chatId}`;
const CHAT_ROOM_PREFIX = 'chat:';

/** The connect_error of a refused handshake: `err.message` is the code, `err.data` the details. */
function refusal(err, socket) {
  const failure = describeFailure(err, { event: 'handshake', socketId: socket.id, address: socket.handshake.address });
  const error = new Error(failure.error);
  error.data = { code: failure.error, message: failure.message, correlationId: failure.correlationId };
  return error;
}

/**
 * @param {import('socket.io').Namespace} nsp
 * @param {object} deps  config, verifier, store, chats (service), presence, typing, metrics
 */
export function attachChatNamespace(nsp, { config, verifier, store, chats, presence, typing, metrics }) {
  nsp.use((socket, next) => {
    try {
      const { userId, admin } = verifier.verify(handshakeToken(socket.handshake));
      if (presence.socketCount(userId) >= config.maxSocketsPerUser) {
        throw new ChatError('TOO_MANY_CONNECTIONS', `at most ${config.maxSocketsPerUser} sockets per user`);
      }
      socket.data.userId = userId;
      socket.data.admin = admin;
      next();
    } catch (err) {
      next(refusal(err, socket));
    }
  });

  /** Whether `userId` still has a socket other than `except` in the chat's room. */
  function hasOtherSocketInRoom(chatId, userId, except) {
    const members = nsp.adapter.rooms.get(chatRoom(chatId));
    if (!members) return false;
    for (const id of members) {
      if (id !== except && nsp.sockets.get(id)?.data.userId === userId) return true;
    }
    return false;
  }

  nsp.on('connection', (socket) => {
    const { userId } = socket.data;
    socket.join(userRoom(userId));
    if (socket.handshake.auth?.autoJoin === true) {
      socket.join(store.chatsOf(userId).map((chat) => chatRoom(chat.id)));
    }
    presence.connected(userId);
    metrics.socketConnected();
    socket.emit('presence:snapshot', { online: presence.onlineContacts(userId) });

    /** An acknowledged event: the handler's result is `{ ok: true, data }`, a throw is `{ ok: false, … }`. */
    const handle = (event, handler) => {
      socket.on(event, (...args) => {
        const ack = typeof args[args.length - 1] === 'function' ? args.pop() : null;
        presence.seen(userId);
        let reply;
        try {
          const data = handler(args[0]);
          reply = data === undefined ? { ok: true } : { ok: true, data };
          metrics.ack('ok');
        } catch (err) {
          const failure = describeFailure(err, { event, userId, socketId: socket.id });
          reply = { ok: false, ...failure };
          metrics.ack(failure.error);
        }
        if (ack) ack(reply);
      });
    };

    /** typing:* never answers, not even with a callback, and ignores non-members silently. */
    const handleTyping = (event, start) => {
      socket.on(event, (payload) => {
        presence.seen(userId);
        try {
          const { chatId } = validate.chatRef(payload, event);
          const chat = store.getChat(chatId);
          if (!chat || !store.isMember(chat, userId)) return;
          if (start) typing.start(chatId, userId);
          else typing.stop(chatId, userId);
        } catch (err) {
          describeFailure(err, { event, userId, socketId: socket.id });
        }
      });
    };

    handle('room:join', (payload) => {
      const { chatId } = validate.chatRef(payload, 'room:join');
      const chat = chats.chatFor(userId, chatId);
      socket.join(chatRoom(chatId));
      return { chatId, lastSeq: store.lastSeq(chat), memberIds: [...chat.memberIds] };
    });

    handle('room:leave', (payload) => {
      const { chatId } = validate.chatRef(payload, 'room:leave');
      if (!socket.rooms.has(chatRoom(chatId))) return undefined;
      socket.leave(chatRoom(chatId));
      if (!hasOtherSocketInRoom(chatId, userId, socket.id)) typing.stop(chatId, userId);
      return undefined;
    });

    handle('message:send', (payload) => chats.sendMessage(userId, validate.sendMessage(payload)));
    handle('receipt:read', (payload) => chats.markRead(userId, validate.readReceipt(payload)));
    handle('presence:ping', (payload) => {
      validate.ping(payload);
      return { serverTime: new Date().toISOString() };
    });
    handle('chat:create', (payload) => ({ chat: chats.createChat(userId, validate.createChat(payload)).chat }));
    handle('messages:sync', (payload) => chats.sync(userId, validate.syncMessages(payload)));
    handleTyping('typing:start', true);
    handleTyping('typing:stop', false);

    // Rooms are still known while disconnecting: stop typing where this was the user's last socket.
    socket.on('disconnecting', () => {
      for (const room of socket.rooms) {
        if (!room.startsWith(CHAT_ROOM_PREFIX)) continue;
        const chatId = room.slice(CHAT_ROOM_PREFIX.length);
        if (!hasOtherSocketInRoom(chatId, userId, socket.id)) typing.stop(chatId, userId);
      }
    });

    socket.on('disconnect', () => {
      presence.disconnected(userId);
      metrics.socketDisconnected();
    });
  });
}

/** The room helpers the chat service announces through. */
export function roomsOf(nsp) {
  return {
    toChat: (chatId, event, payload) => nsp.to(chatRoom(chatId)).emit(event, payload),
    toUser: (userId, event, payload) => nsp.to(userRoom(userId)).emit(event, payload),
    toUsers: (userIds, event, payload) => nsp.to(userIds.map(userRoom)).emit(event, payload),
    toChatExceptUser: (chatId, userId, event, payload) =>
      nsp.to(chatRoom(chatId)).except(userRoom(userId)).emit(event, payload),
    leaveChatRoom: (userId, chatId) => nsp.in(userRoom(userId)).socketsLeave(chatRoom(chatId)),
  };
}

/** GET /api/v1/admin/sockets: connections, users and every named room with its sockets. */
export function adminView(nsp) {
  const users = new Set();
  for (const socket of nsp.sockets.values()) users.add(socket.data.userId);
  const rooms = [];
  for (const [room, ids] of nsp.adapter.rooms) {
    if (ids.has(room)) continue; // a socket's own private room
    const userIds = new Set();
    for (const id of ids) {
      const owner = nsp.sockets.get(id)?.data.userId;
      if (owner !== undefined) userIds.add(owner);
    }
    rooms.push({ room, sockets: ids.size, userIds: [...userIds] });
  }
  return { connections: nsp.sockets.size, users: users.size, rooms };
}
