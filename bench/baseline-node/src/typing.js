// Typing indicators (PROTOCOL.md §6): one "start" per typing spell, "stop" on typing:stop,
// after TYPING_TIMEOUT_MS without a new start, or when the user's last socket in the chat
// room goes away.

export class Typing {
  /**
   * @param {object} o
   * @param {number} o.timeoutMs
   * @param {(chatId: string, userId: string, state: 'start'|'stop') => void} o.announce
   */
  constructor({ timeoutMs, announce }) {
    this.timeoutMs = timeoutMs;
    this.announce = announce;
    /** `${chatId} ${userId}` → timer of the running spell */
    this.spells = new Map();
  }

  start(chatId, userId) {
    const key = `${chatId} ${userId}`;
    const running = this.spells.get(key);
    if (running) {
      running.refresh();
      return;
    }
    this.spells.set(key, setTimeout(() => this.stop(chatId, userId), this.timeoutMs));
    this.announce(chatId, userId, 'start');
  }

  stop(chatId, userId) {
    const key = `${chatId} ${userId}`;
    const running = this.spells.get(key);
    if (!running) return;
    clearTimeout(running);
    this.spells.delete(key);
    this.announce(chatId, userId, 'stop');
  }

  close() {
    for (const timer of this.spells.values()) clearTimeout(timer);
    this.spells.clear();
  }
}
