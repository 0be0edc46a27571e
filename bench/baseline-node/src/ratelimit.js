// Sliding-window limit on new messages per user, across all of the user's devices
// (PROTOCOL.md §5). Only stored messages are recorded, so refused attempts never count.

export class SlidingWindowLimiter {
  constructor({ limit, windowMs }) {
    this.limit = limit;
    this.windowMs = windowMs;
    /** userId → { times: timestamps (ms) of stored messages, oldest first, head: first live index } */
    this.users = new Map();
  }

  /** The user's entry with every timestamp that left the window dropped, or undefined. */
  #recent(userId, now) {
    const entry = this.users.get(userId);
    if (!entry) return undefined;
    const { times } = entry;
    while (entry.head < times.length && times[entry.head] <= now - this.windowMs) entry.head++;
    if (entry.head === times.length) {
      this.users.delete(userId);
      return undefined;
    }
    // Compact now and then, so a busy user's queue does not grow without bound.
    if (entry.head > 64 && entry.head * 2 > times.length) {
      times.splice(0, entry.head);
      entry.head = 0;
    }
    return entry;
  }

  /** Whether one more message from `userId` would stay within the limit. */
  allows(userId, now = Date.now()) {
    const entry = this.#recent(userId, now);
    return (entry ? entry.times.length - entry.head : 0) < this.limit;
  }

  record(userId, now = Date.now()) {
    const entry = this.#recent(userId, now);
    if (entry) entry.times.push(now);
    else this.users.set(userId, { times: [now], head: 0 });
  }
}
