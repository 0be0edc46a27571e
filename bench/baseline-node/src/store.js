// In-memory storage: Maps instead of the database a production deployment would use.
// Everything a restart would lose lives here and only here; the socket-side state
// (rooms, presence, typing, rate limits) lives in the realtime modules.

import { v7 as uuidv7 } from 'uuid';

const iso = (ms) => new Date(ms).toISOString();
const sentKey = (userId, clientId) => `${userId}\u0000${clientId}`;
const dmKey = (a, b) => (a < b ? `${a}\u0000${b}` : `${b}\u0000${a}`);

export class MemoryStore {
  constructor() {
    /** chatId → chat record (see #newChat) */
    this.chats = new Map();
    /** the two user ids of a DM, sorted → chatId */
    this.dms = new Map();
    /** userId → Set of chatIds the user is a member of */
    this.userChats = new Map();
    /** userId + clientId → message: idempotency of sends, kept forever */
    this.sent = new Map();
  }

  getChat(chatId) {
    return this.chats.get(chatId);
  }

  /** The DM between two users, or a new group; `{ chat, created }`. */
  createChat({ kind, title, memberIds, createdBy }) {
    if (kind === 'dm') {
      const key = dmKey(memberIds[0], memberIds[1]);
      const existing = this.chats.get(this.dms.get(key));
      if (existing) return { chat: existing, created: false };
      const chat = this.#newChat({ kind, title: null, memberIds, createdBy });
      this.dms.set(key, chat.id);
      return { chat, created: true };
    }
    return { chat: this.#newChat({ kind, title, memberIds, createdBy }), created: true };
  }

  #newChat({ kind, title, memberIds, createdBy }) {
    const now = Date.now();
    const chat = {
      id: uuidv7(),
      kind,
      title,
      memberIds: [...memberIds],
      createdBy,
      createdAt: now,
      updatedAt: now,
      /** messages[seq - 1]: seq has no gaps, so the array index is the seq */
      messages: [],
      messagesById: new Map(),
      /** userId → { seq, messageId, readAt } of the newest message read */
      cursors: new Map(),
      /** userId → unread count, kept up to date on every send and read */
      unread: new Map(),
    };
    for (const user of memberIds) this.#addMembership(chat, user);
    this.chats.set(chat.id, chat);
    return chat;
  }

  #addMembership(chat, userId) {
    let chats = this.userChats.get(userId);
    if (!chats) this.userChats.set(userId, (chats = new Set()));
    chats.add(chat.id);
    chat.unread.set(userId, this.#countUnread(chat, userId, 0));
  }

  isMember(chat, userId) {
    return chat.unread.has(userId);
  }

  lastSeq(chat) {
    return chat.messages.length;
  }

  lastActivity(chat) {
    const last = chat.messages.at(-1);
    return last ? Date.parse(last.createdAt) : chat.createdAt;
  }

  /** The chats `userId` belongs to. */
  chatsOf(userId) {
    const ids = this.userChats.get(userId);
    return ids ? [...ids].map((id) => this.chats.get(id)) : [];
  }

  /** Everyone who shares at least one chat with `userId`. */
  contactsOf(userId) {
    const contacts = new Set();
    for (const chatId of this.userChats.get(userId) ?? []) {
      for (const member of this.chats.get(chatId).memberIds) if (member !== userId) contacts.add(member);
    }
    return contacts;
  }

  sentMessage(userId, clientId) {
    return this.sent.get(sentKey(userId, clientId));
  }

  /** Stores a new message with the next seq; returns its wire form. */
  appendMessage(chat, { senderId, body, kind, clientId }) {
    const now = Date.now();
    const message = {
      id: uuidv7(),
      chatId: chat.id,
      seq: chat.messages.length + 1,
      senderId,
      body,
      kind,
      clientId,
      createdAt: iso(now),
    };
    chat.messages.push(message);
    chat.messagesById.set(message.id, message);
    this.sent.set(sentKey(senderId, clientId), message);
    for (const [user, count] of chat.unread) if (user !== senderId) chat.unread.set(user, count + 1);
    return message;
  }

  /** Messages with seq > afterSeq, oldest first, at most `limit`. */
  messagesAfter(chat, afterSeq, limit) {
    const from = Math.min(afterSeq, chat.messages.length);
    const messages = chat.messages.slice(from, from + limit);
    return { messages, hasMore: from + limit < chat.messages.length };
  }

  /** The newest `limit` messages with seq < beforeSeq (or overall), oldest first. */
  messagesBefore(chat, beforeSeq, limit) {
    const end = beforeSeq === null ? chat.messages.length : Math.min(Math.max(beforeSeq - 1, 0), chat.messages.length);
    const start = Math.max(0, end - limit);
    return { messages: chat.messages.slice(start, end), hasMore: start > 0 };
  }

  getMessage(chat, messageId) {
    return chat.messagesById.get(messageId);
  }

  cursorOf(chat, userId) {
    return chat.cursors.get(userId);
  }

  /** Moves the read cursor forward to `message`; `{ cursor, moved }`. */
  markRead(chat, userId, message) {
    const current = chat.cursors.get(userId);
    if (current && current.seq >= message.seq) return { cursor: current, moved: false };
    const cursor = { seq: message.seq, messageId: message.id, readAt: new Date().toISOString() };
    chat.cursors.set(userId, cursor);
    chat.unread.set(userId, this.#countUnread(chat, userId, message.seq));
    return { cursor, moved: true };
  }

  unreadCount(chat, userId) {
    return chat.unread.get(userId) ?? 0;
  }

  #countUnread(chat, userId, afterSeq) {
    let n = 0;
    for (let i = afterSeq; i < chat.messages.length; i++) if (chat.messages[i].senderId !== userId) n++;
    return n;
  }

  #touch(chat) {
    chat.updatedAt = Math.max(Date.now(), chat.updatedAt);
  }

  rename(chat, title) {
    chat.title = title;
    this.#touch(chat);
  }

  addMember(chat, userId) {
    chat.memberIds.push(userId);
    this.#addMembership(chat, userId);
    this.#touch(chat);
  }

  removeMember(chat, userId) {
    chat.memberIds = chat.memberIds.filter((u) => u !== userId);
    chat.unread.delete(userId);
    chat.cursors.delete(userId);
    this.userChats.get(userId)?.delete(chat.id);
    this.#touch(chat);
  }
}

/** The wire form of a chat (PROTOCOL.md §4 `Chat`). */
export function chatView(chat) {
  return {
    id: chat.id,
    kind: chat.kind,
    title: chat.title,
    memberIds: [...chat.memberIds],
    createdBy: chat.createdBy,
    createdAt: iso(chat.createdAt),
    updatedAt: iso(chat.updatedAt),
  };
}
