// Sliding-window limit on new messages per user, across all of the user's devices
// (PROTOCOL.md §5). Only stored messages are recorded, so refused attempts never count.

export class SlidingWindowLimiter {
  constructor({ limit, windowMs }) {
    this.limit = limit;
    this.windowMs = windowMs;
    /** userId → timestamps (ms) of the user's stored messages inside the window, oldest first */
    this.hits = new Map();
  }

  #recent(userId, now) {
    const hits = this.hits.get(userId);
    if (!hits) return undefined;
    let drop = 0;
    while (drop < hits.length && hits[drop] <= now - this.windowMs) drop++;
    if (drop > 0) hits.splice(0, drop);
    if (hits.length === 0) {
      this.hits.delete(userId);
      return undefined;
    }
    return hits;
  }

  /** Whether one more message from `userId` would stay within the limit. */
  allows(userId, now = Date.now()) {
    return (this.#recent(userId, now)?.length ?? 0) < this.limit;
  }

  record(userId, now = Date.now()) {
    const hits = this.#recent(userId, now);
    if (hits) hits.push(now);
    else this.hits.set(userId, [now]);
  }
}
