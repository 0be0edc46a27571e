// Who is online, and presence:update to contacts (PROTOCOL.md §8): at most one update per
// user per PRESENCE_THROTTLE_MS; changes inside the window collapse into the final state,
// sent when the window ends, and nothing at all if that is the state last sent.

export class Presence {
  /**
   * @param {object} o
   * @param {number} o.throttleMs
   * @param {(userId: string) => Set<string>} o.contactsOf
   * @param {(userIds: string[], payload: object) => void} o.broadcast  emits presence:update to those users
   */
  constructor({ throttleMs, contactsOf, broadcast }) {
    this.throttleMs = throttleMs;
    this.contactsOf = contactsOf;
    this.broadcast = broadcast;
    /** userId → { sockets, lastSeenAt, sent, sentAt, timer } */
    this.users = new Map();
  }

  #user(userId) {
    let user = this.users.get(userId);
    if (!user) {
      user = { sockets: 0, lastSeenAt: Date.now(), sent: 'offline', sentAt: -Infinity, timer: null };
      this.users.set(userId, user);
    }
    return user;
  }

  socketCount(userId) {
    return this.users.get(userId)?.sockets ?? 0;
  }

  isOnline(userId) {
    return this.socketCount(userId) > 0;
  }

  /** The user's contacts who are online now. */
  onlineContacts(userId) {
    return [...this.contactsOf(userId)].filter((contact) => this.isOnline(contact));
  }

  connected(userId) {
    const user = this.#user(userId);
    user.sockets++;
    user.lastSeenAt = Date.now();
    if (user.sockets === 1) this.#changed(userId, user);
  }

  disconnected(userId) {
    const user = this.users.get(userId);
    if (!user) return;
    user.sockets = Math.max(0, user.sockets - 1);
    user.lastSeenAt = Date.now();
    if (user.sockets === 0) this.#changed(userId, user);
  }

  /** Any event from the user refreshes last-seen. */
  seen(userId) {
    const user = this.users.get(userId);
    if (user) user.lastSeenAt = Date.now();
  }

  #changed(userId, user) {
    if (user.timer) return; // the pending flush sends whatever the state is then
    const wait = user.sentAt + this.throttleMs - Date.now();
    if (wait <= 0) this.#flush(userId, user);
    else user.timer = setTimeout(() => this.#flush(userId, user), wait);
  }

  #flush(userId, user) {
    user.timer = null;
    const status = user.sockets > 0 ? 'online' : 'offline';
    if (status === user.sent) return;
    user.sent = status;
    user.sentAt = Date.now();
    const contacts = [...this.contactsOf(userId)];
    if (contacts.length > 0) {
      this.broadcast(contacts, { userId, status, lastSeenAt: new Date(user.lastSeenAt).toISOString() });
    }
  }

  close() {
    for (const user of this.users.values()) clearTimeout(user.timer);
  }
}
