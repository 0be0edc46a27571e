import { io } from "socket.io-client";
import type { ChatSocket } from "./protocol.js";

/**
 * Connects and resolves once the server has let the socket in. A refused handshake
 * rejects with an Error whose `message` is the code (`UNAUTHORIZED`,
 * `TOO_MANY_CONNECTIONS`); hosts that can also send `data` make it
 * `{ code, message, correlationId }` (the server logs the refusal either way).
 * `url` is the server's origin, plus the namespace if CHAT_NAMESPACE moved it
 * (e.g. `https://chat.example.com/api/v1/sockets`).
 */
export function connect(url: string, token: string): Promise<ChatSocket> {
  const socket: ChatSocket = io(url, {
    // autoJoin: the socket joins the room of every chat of the user, at every (re)connect.
    auth: { token, autoJoin: true },
  });
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.on("connect_error", (error) => {
      // socket.active: a network problem, which socket.io-client retries by itself.
      // Otherwise the server refused us, and nothing is retried.
      if (!socket.active) {
        socket.close();
        reject(error);
      }
    });
  });
}
