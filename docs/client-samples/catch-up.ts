import type { ChatSocket, Message } from "./protocol.js";
import { request } from "./request.js";

/**
 * The messages of the chats you follow, in seq order, with no gaps and no duplicates.
 * Live messages come as message:new; after every reconnect, and whenever a seq is
 * skipped, messages:sync fetches what came after the newest seq held.
 */
export class ChatLog {
  private readonly chats = new Map<string, Message[]>();

  constructor(
    private readonly socket: ChatSocket,
    private readonly onMessage: (message: Message) => void = () => {},
  ) {
    socket.on("message:new", (message) => {
      if (!this.chats.has(message.chatId)) return;
      if (message.seq === this.lastSeq(message.chatId) + 1) this.append(message);
      else if (message.seq > this.lastSeq(message.chatId)) void this.catchUp(message.chatId);
    });
    // "connect" fires again after each reconnect; with autoJoin the rooms are joined again.
    socket.on("connect", () => {
      for (const chatId of this.chats.keys()) void this.catchUp(chatId);
    });
  }

  /** Starts keeping a chat, from its first message. */
  follow(chatId: string): Promise<void> {
    if (!this.chats.has(chatId)) this.chats.set(chatId, []);
    return this.catchUp(chatId);
  }

  messages(chatId: string): readonly Message[] {
    return this.chats.get(chatId) ?? [];
  }

  lastSeq(chatId: string): number {
    return this.chats.get(chatId)?.at(-1)?.seq ?? 0;
  }

  /** Fetches everything after the newest seq held, 200 at a time. */
  async catchUp(chatId: string): Promise<void> {
    for (;;) {
      const { messages, hasMore } = await request(this.socket, "messages:sync", {
        chatId, afterSeq: this.lastSeq(chatId), limit: 200,
      });
      for (const message of messages) {
        if (message.seq === this.lastSeq(chatId) + 1) this.append(message);
      }
      if (!hasMore) return;
    }
  }

  private append(message: Message): void {
    this.chats.get(message.chatId)?.push(message);
    this.onMessage(message);
  }
}
