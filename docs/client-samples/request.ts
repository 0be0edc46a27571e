import type { Ack, ChatSocket, ErrorCode, Requests } from "./protocol.js";

/** A refused event: the contract's code (or TIMEOUT when no ack came) and the correlation id. */
export class ChatError extends Error {
  constructor(
    readonly code: ErrorCode | "TIMEOUT",
    message: string,
    /** Quote it to the operator: the server logged the failure with it. */
    readonly correlationId?: string,
  ) {
    super(`${code}: ${message}`);
  }
}

/** socket.timeout(ms).emitWithAck with the ack's type, which socket.io-client's typings lose there. */
interface TimedEmitter {
  emitWithAck<E extends keyof Requests>(event: E, payload: Requests[E]["payload"]): Promise<Ack<Requests[E]["data"]>>;
}

/** Emits an acknowledged event; resolves with the ack's `data`, or throws a ChatError. */
export async function request<E extends keyof Requests>(
  socket: ChatSocket,
  event: E,
  payload: Requests[E]["payload"],
  timeoutMs = 5000,
): Promise<Requests[E]["data"]> {
  let answer: Ack<Requests[E]["data"]>;
  try {
    answer = await (socket.timeout(timeoutMs) as unknown as TimedEmitter).emitWithAck(event, payload);
  } catch {
    // No ack in time. The event may or may not have been carried out.
    throw new ChatError("TIMEOUT", `no ack to ${event} within ${timeoutMs} ms`);
  }
  if (!answer.ok) throw new ChatError(answer.error, answer.message, answer.correlationId);
  return answer.data;
}
