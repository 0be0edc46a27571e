// The chat rules shared by the Socket.IO events and the HTTP API: who may do what, in
// which order things are checked, what is stored and what is announced to whom. Every
// function is synchronous (storage is in memory) and throws a ChatError on refusal.

import { validation, forbidden, notFound, rateLimited } from './errors.js';
import { chatView } from './store.js';

/**
 * @param {object} deps
 * @param {import('./store.js').MemoryStore} deps.store
 * @param {import('./ratelimit.js').SlidingWindowLimiter} deps.limiter
 * @param {{ toChat(chatId, event, payload), toUser(userId, event, payload), leaveChatRoom(userId, chatId) }} deps.rooms
 * @param {import('./typing.js').Typing} deps.typing
 * @param {{ messageStored(): void }} deps.metrics
 * @param {{ maxGroupMembers: number }} deps.config
 */
export function createChatService({ store, limiter, rooms, typing, metrics, config }) {
  function chatFor(userId, chatId) {
    const chat = store.getChat(chatId);
    if (!chat) throw notFound('chat not found');
    if (!store.isMember(chat, userId)) throw forbidden('not a member of this chat');
    return chat;
  }

  function requireGroup(chat, why) {
    if (chat.kind !== 'group') throw validation(why);
  }

  /** chat:update to every member, plus `alsoTo` (members who just left). */
  function announceChat(chat, alsoTo = []) {
    const payload = { chat: chatView(chat) };
    for (const userId of [...chat.memberIds, ...alsoTo]) rooms.toUser(userId, 'chat:update', payload);
  }

  const sendAck = (m) => ({ clientId: m.clientId, serverId: m.id, seq: m.seq, createdAt: m.createdAt });

  return {
    chatFor,

    /** `{ chat, created }`; a DM between two users is unique. */
    createChat(userId, { kind, memberIds, title }) {
      let members;
      if (kind === 'dm') {
        if (memberIds[0] === userId) throw validation('a direct chat needs another user');
        members = [userId, memberIds[0]];
      } else {
        members = [userId, ...memberIds.filter((m) => m !== userId)];
        if (members.length > config.maxGroupMembers) {
          throw validation(`a group has at most ${config.maxGroupMembers} members`);
        }
      }
      const { chat, created } = store.createChat({ kind, title, memberIds: members, createdBy: userId });
      if (created) announceChat(chat);
      return { chat: chatView(chat), created };
    },

    /** Stores and broadcasts a message (or acks the stored one for a retried clientId). */
    sendMessage(userId, { chatId, body, clientId, kind }) {
      const previous = store.sentMessage(userId, clientId);
      if (previous) {
        if (previous.chatId !== chatId || previous.body !== body) {
          throw validation('clientId was already used for a different message');
        }
        return sendAck(previous);
      }
      const chat = chatFor(userId, chatId);
      const now = Date.now();
      if (!limiter.allows(userId, now)) throw rateLimited('too many messages, slow down');
      const message = store.appendMessage(chat, { senderId: userId, body, kind, clientId });
      limiter.record(userId, now);
      metrics.messageStored();
      // Order of effects (§5): message:new to the room, inbox:update to each member, then the ack.
      rooms.toChat(chat.id, 'message:new', message);
      for (const member of chat.memberIds) {
        rooms.toUser(member, 'inbox:update', {
          chatId: chat.id,
          lastMessage: message,
          unreadCount: store.unreadCount(chat, member),
        });
      }
      return sendAck(message);
    },

    markRead(userId, { chatId, messageId }) {
      const chat = chatFor(userId, chatId);
      const message = store.getMessage(chat, messageId);
      if (!message) throw notFound('message not found in this chat');
      const { cursor, moved } = store.markRead(chat, userId, message);
      if (moved) {
        rooms.toChat(chat.id, 'receipt:update', {
          chatId: chat.id,
          userId,
          messageId: cursor.messageId,
          seq: cursor.seq,
          readAt: cursor.readAt,
        });
      }
      return { readAt: cursor.readAt, messageId: cursor.messageId, seq: cursor.seq };
    },

    sync(userId, { chatId, afterSeq, limit }) {
      return store.messagesAfter(chatFor(userId, chatId), afterSeq, limit);
    },

    history(userId, chatId, { afterSeq, beforeSeq, limit }) {
      const chat = chatFor(userId, chatId);
      return afterSeq !== null ? store.messagesAfter(chat, afterSeq, limit) : store.messagesBefore(chat, beforeSeq, limit);
    },

    /** The caller's chats, newest activity first. */
    listChats(userId) {
      return store
        .chatsOf(userId)
        .map((chat) => ({ chat, at: store.lastActivity(chat) }))
        .sort((x, y) => y.at - x.at || (x.chat.id < y.chat.id ? 1 : -1))
        .map(({ chat }) => ({
          chat: chatView(chat),
          lastMessage: chat.messages.at(-1) ?? null,
          unreadCount: store.unreadCount(chat, userId),
        }));
    },

    rename(userId, chatId, title) {
      const chat = chatFor(userId, chatId);
      requireGroup(chat, 'only a group has a title');
      store.rename(chat, title);
      announceChat(chat);
      return chatView(chat);
    },

    addMember(actorId, chatId, userId) {
      const chat = chatFor(actorId, chatId);
      requireGroup(chat, "a direct chat's members never change");
      if (store.isMember(chat, userId)) return chatView(chat);
      if (chat.memberIds.length >= config.maxGroupMembers) {
        throw validation(`a group has at most ${config.maxGroupMembers} members`);
      }
      store.addMember(chat, userId);
      announceChat(chat);
      return chatView(chat);
    },

    removeMember(actorId, chatId, userId) {
      const chat = chatFor(actorId, chatId);
      requireGroup(chat, "a direct chat's members never change");
      if (actorId !== userId && actorId !== chat.createdBy) {
        throw forbidden("only the group's creator may remove another member");
      }
      if (!store.isMember(chat, userId)) throw notFound('that user is not a member');
      store.removeMember(chat, userId);
      rooms.leaveChatRoom(userId, chat.id);
      typing.stop(chat.id, userId);
      announceChat(chat, [userId]);
      return chatView(chat);
    },
  };
}
