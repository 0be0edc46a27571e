import type { ChatSocket } from "./protocol.js";

/**
 * Tells the chat you are typing without flooding it: typing:start at most once per
 * `refreshMs` while keys are pressed (the server ends the indicator by itself after
 * TYPING_TIMEOUT_MS, 5 s by default, without a new start), and typing:stop after
 * `idleMs` without a keystroke, when the message is sent, or when you leave the chat.
 */
export class TypingNotifier {
  private chatId: string | null = null;
  private sentAt = 0;
  private idle: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly socket: ChatSocket,
    private readonly refreshMs = 3000,
    private readonly idleMs = 2000,
  ) {}

  /** Call on every keystroke in the composer of `chatId`. */
  keystroke(chatId: string): void {
    if (this.chatId !== chatId) this.stop();
    const now = Date.now();
    if (this.chatId === null || now - this.sentAt >= this.refreshMs) {
      this.socket.emit("typing:start", { chatId }); // no ack, ever
      this.chatId = chatId;
      this.sentAt = now;
    }
    clearTimeout(this.idle);
    this.idle = setTimeout(() => this.stop(), this.idleMs);
  }

  /** Call when the message is sent or the chat is left. */
  stop(): void {
    clearTimeout(this.idle);
    if (this.chatId !== null) this.socket.emit("typing:stop", { chatId: this.chatId });
    this.chatId = null;
  }
}
