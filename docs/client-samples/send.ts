import type { ChatSocket, Requests } from "./protocol.js";
import { ChatError, request } from "./request.js";

type Sent = Requests["message:send"]["data"];

/**
 * Sends a message, retrying with the SAME clientId until it is acked. The server stores
 * (sender, clientId) once: a retry of a message that did arrive acks the same serverId
 * and seq and broadcasts nothing, even after a reconnect or a server restart.
 */
export async function sendMessage(
  socket: ChatSocket,
  chatId: string,
  body: string,
  { clientId = crypto.randomUUID(), attempts = 5, timeoutMs = 5000 } = {},
): Promise<Sent> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await request(socket, "message:send", { chatId, body, clientId }, timeoutMs);
    } catch (error) {
      if (!(error instanceof ChatError) || attempt >= attempts) throw error;
      if (error.code === "TIMEOUT") continue; // socket.io-client buffers it while disconnected
      if (error.code === "RATE_LIMITED") {
        await new Promise((resolve) => setTimeout(resolve, 1000 * attempt));
        continue;
      }
      throw error; // VALIDATION_ERROR, FORBIDDEN, NOT_FOUND, PAYLOAD_TOO_LARGE: a retry cannot help
    }
  }
}
