// The wire contract (shared/PROTOCOL.md) as types for socket.io-client.
import type { Socket } from "socket.io-client";

export type ErrorCode =
  | "VALIDATION_ERROR" | "UNAUTHORIZED" | "FORBIDDEN" | "NOT_FOUND"
  | "RATE_LIMITED" | "PAYLOAD_TOO_LARGE" | "INTERNAL";

/** What every acknowledged event answers. */
export type Ack<T> =
  | { ok: true; data: T }
  | { ok: false; error: ErrorCode; message: string; correlationId: string };

export interface Message {
  id: string; chatId: string; seq: number; senderId: string; body: string;
  kind: "text" | "image"; clientId: string; createdAt: string;
}

export interface Chat {
  id: string; kind: "dm" | "group"; title: string | null; memberIds: string[];
  createdBy: string; createdAt: string; updatedAt: string;
}

/** Client events that take an acknowledgement: their payload and their ack's `data`. */
export interface Requests {
  "room:join": { payload: { chatId: string }; data: { chatId: string; lastSeq: number; memberIds: string[] } };
  "room:leave": { payload: { chatId: string }; data: undefined };
  "message:send": {
    payload: { chatId: string; body: string; clientId: string; kind?: "text" | "image" };
    data: { clientId: string; serverId: string; seq: number; createdAt: string };
  };
  "receipt:read": { payload: { chatId: string; messageId: string }; data: { readAt: string; messageId: string; seq: number } };
  "presence:ping": { payload: Record<string, never>; data: { serverTime: string } };
  "chat:create": {
    payload: { kind: "dm"; memberIds: [string] } | { kind: "group"; memberIds: string[]; title: string };
    data: { chat: Chat };
  };
  "messages:sync": { payload: { chatId: string; afterSeq: number; limit?: number }; data: { messages: Message[]; hasMore: boolean } };
}

export type ClientToServerEvents = {
  [E in keyof Requests]: (payload: Requests[E]["payload"], ack: (answer: Ack<Requests[E]["data"]>) => void) => void;
} & {
  // Fire-and-forget: never acknowledged.
  "typing:start": (payload: { chatId: string }) => void;
  "typing:stop": (payload: { chatId: string }) => void;
};

export interface ServerToClientEvents {
  "message:new": (message: Message) => void;
  "typing:update": (update: { chatId: string; userId: string; state: "start" | "stop" }) => void;
  "receipt:update": (update: { chatId: string; userId: string; messageId: string; seq: number; readAt: string }) => void;
  "inbox:update": (update: { chatId: string; lastMessage: Message; unreadCount: number }) => void;
  "chat:update": (update: { chat: Chat }) => void;
  "presence:update": (update: { userId: string; status: "online" | "offline"; lastSeenAt: string }) => void;
  "presence:snapshot": (snapshot: { online: string[] }) => void;
}

export type ChatSocket = Socket<ServerToClientEvents, ClientToServerEvents>;
