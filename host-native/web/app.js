// Chat demo: a plain-JavaScript client of the wire contract (shared/PROTOCOL.md), using only
// socket.io-client and the public HTTP API. No framework, no build step.
"use strict";

(() => {
  const DEMO = document.querySelector('meta[name="chat-demo"]')?.content === "true";
  const NAMESPACE = document.querySelector('meta[name="chat-namespace"]')?.content || "/";
  const SESSION_KEY = "chat-demo-session"; // sessionStorage: one user per tab
  const ACK_TIMEOUT_MS = 5000;
  const SEND_ATTEMPTS = 5;
  const HISTORY_PAGE = 50;
  const TYPING_REFRESH_MS = 3000; // repeat typing:start while typing (the server stops it after 5 s)
  const TYPING_IDLE_MS = 2000; // typing:stop after this much quiet
  const TYPING_SHOW_MS = 7000; // forget a typing indicator nobody refreshed

  const $ = (id) => document.getElementById(id);
  const el = (tag, className, text) => {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  };

  /** Everything the page knows. */
  const state = {
    me: null,
    token: null,
    socket: null,
    chats: new Map(), // chatId -> view (see newView)
    online: new Set(),
    presenceKnown: new Set(), // users whose presence we know (see seenOnline)
    lastSeen: new Map(), // userId -> lastSeenAt of their last presence:update
    activeId: null,
    reminted: 0,
  };

  function newView(chat) {
    return {
      chat,
      lastMessage: null,
      unread: 0,
      messages: [], // confirmed, ascending seq
      byId: new Map(),
      seqs: new Set(),
      pending: new Map(), // clientId -> { clientId, chatId, body, status, error, createdAt }
      loaded: false, // history fetched: live messages and catch-up are kept from then on
      hasOlder: false,
      lastSeq: 0, // newest seq received with no gap before it (catch-up starts after it)
      readSeq: 0, // my read cursor
      readBy: new Map(), // other userId -> seq read
      typing: new Map(), // userId -> timer
    };
  }

  // ---------------------------------------------------------------- helpers

  function uuid() {
    if (crypto.randomUUID) return crypto.randomUUID();
    // Pages served over plain http from a non-loopback address have no randomUUID.
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function tokenClaims(token) {
    try {
      const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      const bytes = Uint8Array.from(atob(part), (c) => c.charCodeAt(0));
      return JSON.parse(new TextDecoder().decode(bytes));
    } catch {
      return null;
    }
  }

  function hue(name) {
    let h = 0;
    for (const c of name) h = (h * 31 + c.codePointAt(0)) % 360;
    return h;
  }

  function paintAvatar(node, name, userId) {
    node.textContent = [...name.replace(/[^\p{L}\p{N}]/gu, "")].slice(0, 2).join("").toUpperCase() || "?";
    node.style.setProperty("--hue", String(hue(name)));
    if (userId !== undefined && state.presenceKnown.has(userId)) {
      node.appendChild(el("span", `presence ${state.online.has(userId) ? "online" : "offline"}`));
    }
  }

  const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
  const dateFormat = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });
  function shortTime(iso) {
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return "";
    return date.toDateString() === new Date().toDateString() ? timeFormat.format(date) : dateFormat.format(date);
  }

  function otherMembers(chat) {
    return chat.memberIds.filter((id) => id !== state.me);
  }

  function chatTitle(chat) {
    if (chat.kind === "dm") return otherMembers(chat)[0] ?? state.me;
    return chat.title || otherMembers(chat).join(", ");
  }

  function activity(view) {
    return Date.parse(view.lastMessage?.createdAt ?? view.chat.createdAt) || 0;
  }

  async function api(path, options = {}) {
    const res = await fetch(path, {
      ...options,
      headers: { authorization: `Bearer ${state.token}`, "content-type": "application/json", ...(options.headers ?? {}) },
    });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(body.message || `${path}: HTTP ${res.status}`);
    return body;
  }

  /** An acknowledged event: resolves with the ack, or `{ ok: false, error: "TIMEOUT" }`. */
  async function request(event, payload) {
    try {
      return await state.socket.timeout(ACK_TIMEOUT_MS).emitWithAck(event, payload);
    } catch {
      return { ok: false, error: "TIMEOUT", message: `no answer to ${event} within ${ACK_TIMEOUT_MS / 1000} s` };
    }
  }

  function whenConnected() {
    const socket = state.socket;
    if (socket.connected) return Promise.resolve();
    return new Promise((resolve) => socket.once("connect", resolve));
  }

  // ---------------------------------------------------------------- sign-in

  function showSignIn(message) {
    $("app-view").hidden = true;
    $("signin-view").hidden = false;
    $("demo-warning").hidden = !DEMO;
    $("signin-name-field").hidden = !DEMO;
    $("signin-token-field").hidden = DEMO;
    $("signin-error").textContent = message ?? "";
    (DEMO ? $("signin-name") : $("signin-token")).focus();
  }

  async function demoToken(name) {
    const res = await fetch("/api/demo/token", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name }),
    });
    const body = await res.json().catch(() => ({}));
    if (res.status === 404) throw new Error("This server is not in demo mode: sign in with a token.");
    if (!res.ok) throw new Error(body.message || `sign-in failed (HTTP ${res.status})`);
    return { token: body.token, userId: body.userId };
  }

  $("signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("signin-error").textContent = "";
    const button = event.submitter ?? $("signin-form").querySelector("button");
    button.disabled = true;
    try {
      let session;
      if (DEMO) {
        const name = $("signin-name").value.trim();
        if (!name) throw new Error("Type a name.");
        session = await demoToken(name);
      } else {
        const token = $("signin-token").value.trim().replace(/^Bearer\s+/i, "");
        const claims = tokenClaims(token);
        const userId = claims?.sub ?? claims?.id ?? claims?.userId;
        if (typeof userId !== "string") throw new Error("That does not look like a token.");
        session = { token, userId };
      }
      sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
      start(session);
    } catch (error) {
      $("signin-error").textContent = error.message;
    } finally {
      button.disabled = false;
    }
  });

  $("signout-button").addEventListener("click", () => {
    sessionStorage.removeItem(SESSION_KEY);
    stop();
    showSignIn();
  });

  // ---------------------------------------------------------------- connection

  function start({ token, userId }) {
    stop();
    state.me = userId;
    state.token = token;
    $("signin-view").hidden = true;
    $("app-view").hidden = false;
    $("me-name").textContent = userId;
    paintAvatar($("me-avatar"), userId);
    setConnection("connecting", "Connecting…");
    renderChatList();
    renderPane();

    const socket = io(NAMESPACE, { auth: { token, autoJoin: true } });
    state.socket = socket;

    socket.on("connect", () => {
      setConnection("online", "Online");
      resync().catch((error) => console.warn("resync failed:", error.message));
    });
    socket.on("disconnect", (reason) => {
      setConnection("offline", "Reconnecting…");
      for (const view of state.chats.values()) clearTyping(view);
      renderPane();
      // A disconnect by the server is not retried by socket.io-client itself.
      if (reason === "io server disconnect") setTimeout(() => state.socket === socket && socket.connect(), 1000);
    });
    socket.on("connect_error", (error) => onConnectError(socket, error));

    socket.on("presence:snapshot", ({ online }) => {
      state.online = new Set(online);
      for (const userId of online) state.presenceKnown.add(userId);
      renderChatList();
      renderHeader();
    });
    socket.on("presence:update", ({ userId, status, lastSeenAt }) => {
      state.presenceKnown.add(userId);
      state.lastSeen.set(userId, lastSeenAt);
      if (status === "online") state.online.add(userId);
      else state.online.delete(userId);
      renderChatList();
      renderHeader();
    });
    socket.on("chat:update", ({ chat }) => onChat(chat));
    socket.on("message:new", (message) => onMessage(message));
    socket.on("inbox:update", (update) => onInbox(update));
    socket.on("typing:update", (update) => onTyping(update));
    socket.on("receipt:update", (update) => onReceipt(update));
  }

  function stop() {
    stopTyping();
    if (state.socket) {
      state.socket.removeAllListeners();
      state.socket.disconnect();
    }
    state.socket = null;
    state.chats.clear();
    state.online.clear();
    state.presenceKnown.clear();
    state.lastSeen.clear();
    state.activeId = null;
    $("layout")?.classList.remove("show-chat");
  }

  async function onConnectError(socket, error) {
    if (state.socket !== socket) return;
    if (error.message === "UNAUTHORIZED") {
      // Demo mode: tokens expire after a day; get a fresh one for the same name, once a minute at most.
      if (DEMO && Date.now() - state.reminted > 60_000) {
        state.reminted = Date.now();
        try {
          const session = await demoToken(state.me);
          sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
          state.token = session.token;
          socket.auth.token = session.token;
          socket.connect();
          return;
        } catch {
          /* fall through */
        }
      }
      sessionStorage.removeItem(SESSION_KEY);
      stop();
      showSignIn("The server refused the token (expired, or signed with another secret).");
    } else if (error.message === "TOO_MANY_CONNECTIONS") {
      setConnection("offline", "Too many tabs open for this user");
    } else {
      setConnection("offline", "Reconnecting…"); // socket.io-client retries by itself
    }
  }

  function setConnection(kind, text) {
    const node = $("connection");
    node.dataset.state = kind;
    node.textContent = text;
  }

  /** After every (re)connect: the chat list with unread counts, then what was missed. */
  async function resync() {
    const { chats } = await api("/api/v1/chats");
    const seen = new Set();
    for (const { chat, lastMessage, unreadCount } of chats) {
      // The snapshot of this connect covered everyone we shared a chat with.
      for (const userId of chat.memberIds) state.presenceKnown.add(userId);
      const view = upsertChat(chat);
      view.lastMessage = lastMessage;
      view.unread = unreadCount;
      seen.add(chat.id);
    }
    for (const id of [...state.chats.keys()]) if (!seen.has(id)) removeChat(id);
    renderChatList();
    renderPane();
    await Promise.all([...state.chats.values()].filter((view) => view.loaded).map((view) => catchUp(view)));
    for (const view of state.chats.values()) for (const pending of view.pending.values()) {
      if (pending.status === "failed") deliver(view, pending); // retry with the same clientId
    }
  }

  /** Catch up with `messages:sync` from the newest seq held without a gap. */
  async function catchUp(view) {
    if (view.syncing) {
      view.syncAgain = true;
      return;
    }
    view.syncing = true;
    try {
      do {
        view.syncAgain = false;
        for (;;) {
          const res = await request("messages:sync", { chatId: view.chat.id, afterSeq: view.lastSeq, limit: 200 });
          if (!res.ok) throw new Error(res.message);
          for (const message of res.data.messages) addMessage(view, message);
          if (!res.data.hasMore || res.data.messages.length === 0) break;
        }
      } while (view.syncAgain);
    } finally {
      view.syncing = false;
    }
    renderMessages();
    renderChatList();
  }

  // ---------------------------------------------------------------- chats and messages

  function upsertChat(chat) {
    let view = state.chats.get(chat.id);
    if (view) view.chat = chat;
    else {
      view = newView(chat);
      state.chats.set(chat.id, view);
    }
    return view;
  }

  function removeChat(id) {
    const view = state.chats.get(id);
    if (view) clearTyping(view);
    state.chats.delete(id);
    if (state.activeId === id) state.activeId = null;
  }

  function onChat(chat) {
    if (!chat.memberIds.includes(state.me)) {
      removeChat(chat.id);
    } else {
      const known = state.chats.has(chat.id);
      upsertChat(chat);
      // autoJoin covered the chats of the handshake; a new one needs its room joined.
      if (!known) request("room:join", { chatId: chat.id });
    }
    renderChatList();
    renderPane();
  }

  /** Adds a confirmed message to a loaded chat (idempotent); true when it is new. */
  function addMessage(view, message) {
    if (view.byId.has(message.id)) return false;
    if (message.senderId === state.me) view.pending.delete(message.clientId);
    if (!view.loaded) return true;
    view.byId.set(message.id, message);
    view.seqs.add(message.seq);
    let at = view.messages.length;
    while (at > 0 && view.messages[at - 1].seq > message.seq) at--;
    view.messages.splice(at, 0, message);
    while (view.seqs.has(view.lastSeq + 1)) view.lastSeq++;
    return true;
  }

  /**
   * presence:snapshot comes only at connect, and presence:update only on a change, so a
   * contact from a chat made after connecting is unknown until then. Live messages and
   * typing come from a connected socket, so their sender is online; presence:update
   * tells when that ends.
   */
  function seenOnline(userId) {
    if (userId === state.me || state.online.has(userId)) return;
    state.online.add(userId);
    state.presenceKnown.add(userId);
    renderChatList();
    renderHeader();
  }

  function onMessage(message) {
    seenOnline(message.senderId);
    const view = state.chats.get(message.chatId);
    if (!view) return; // inbox:update follows and fetches the chat
    const gap = view.loaded && message.seq > view.lastSeq + 1;
    addMessage(view, message);
    if (!view.lastMessage || message.seq >= view.lastMessage.seq) view.lastMessage = message;
    if (message.senderId !== state.me) stopTypingOf(view, message.senderId);
    if (gap) catchUp(view);
    renderMessages();
    renderChatList();
  }

  function onInbox({ chatId, lastMessage, unreadCount }) {
    const view = state.chats.get(chatId);
    if (!view) {
      // Someone started a chat with us while we were looking elsewhere.
      request("room:join", { chatId }).then(() => resync());
      return;
    }
    if (!view.lastMessage || lastMessage.seq >= view.lastMessage.seq) view.lastMessage = lastMessage;
    view.unread = lastMessage.seq <= view.readSeq ? 0 : unreadCount;
    renderChatList();
  }

  function onTyping({ chatId, userId, state: typing }) {
    const view = state.chats.get(chatId);
    if (!view || userId === state.me) return;
    clearTimeout(view.typing.get(userId));
    if (typing === "start") {
      seenOnline(userId);
      view.typing.set(userId, setTimeout(() => stopTypingOf(view, userId), TYPING_SHOW_MS));
    } else {
      view.typing.delete(userId);
    }
    renderTyping();
    renderChatList();
  }

  function stopTypingOf(view, userId) {
    if (!view.typing.has(userId)) return;
    clearTimeout(view.typing.get(userId));
    view.typing.delete(userId);
    renderTyping();
    renderChatList();
  }

  function clearTyping(view) {
    for (const timer of view.typing.values()) clearTimeout(timer);
    view.typing.clear();
  }

  function onReceipt({ chatId, userId, seq }) {
    const view = state.chats.get(chatId);
    if (!view) return;
    if (userId === state.me) {
      // Read on another device.
      view.readSeq = Math.max(view.readSeq, seq);
      if (view.lastMessage && seq >= view.lastMessage.seq) view.unread = 0;
      renderChatList();
    } else {
      view.readBy.set(userId, Math.max(view.readBy.get(userId) ?? 0, seq));
      renderMessages();
    }
  }

  async function loadHistory(view, beforeSeq) {
    const query = new URLSearchParams({ limit: String(HISTORY_PAGE) });
    if (beforeSeq) query.set("beforeSeq", String(beforeSeq));
    const { messages, hasMore } = await api(`/api/v1/chats/${encodeURIComponent(view.chat.id)}/messages?${query}`);
    const first = !view.loaded;
    view.loaded = true;
    if (first && messages.length) view.lastSeq = messages[0].seq - 1;
    for (const message of messages) addMessage(view, message);
    if (first || beforeSeq) view.hasOlder = hasMore;
    if (first) await catchUp(view); // anything that arrived between the page and now
  }

  // ---------------------------------------------------------------- opening a chat, reading

  async function openChat(id) {
    if (state.activeId !== id) stopTyping();
    state.activeId = id;
    $("layout").classList.add("show-chat");
    const view = state.chats.get(id);
    renderChatList();
    renderPane();
    if (view && !view.loaded) {
      try {
        await loadHistory(view);
      } catch (error) {
        console.warn("history failed:", error.message);
      }
    }
    if (state.activeId !== id) return;
    renderMessages({ scrollToEnd: true });
    if (matchMedia("(min-width: 720px)").matches) $("composer-input").focus();
  }

  // Read receipts: a message counts as read once most of it has been on screen in a visible tab.
  let readCandidate = null; // { chatId, seq, id }
  let readTimer = null;
  const readObserver = new IntersectionObserver(
    (entries) => {
      for (const entry of entries) {
        if (!entry.isIntersecting) continue;
        const { chatId, seq, id } = entry.target.dataset;
        if (chatId !== state.activeId) continue;
        if (!readCandidate || readCandidate.chatId !== chatId || Number(seq) > readCandidate.seq) {
          readCandidate = { chatId, seq: Number(seq), id };
        }
      }
      scheduleRead();
    },
    { threshold: 0.6 },
  );

  function scheduleRead() {
    if (readTimer) return; // one flush per 250 ms, however many callbacks come
    readTimer = setTimeout(() => {
      readTimer = null;
      flushRead();
    }, 250);
  }

  async function flushRead() {
    const candidate = readCandidate;
    if (!candidate || document.visibilityState !== "visible" || !state.socket?.connected) return;
    const view = state.chats.get(candidate.chatId);
    if (!view || candidate.seq <= view.readSeq) return;
    const res = await request("receipt:read", { chatId: candidate.chatId, messageId: candidate.id });
    if (!res.ok) return;
    view.readSeq = Math.max(view.readSeq, res.data.seq);
    if (view.lastMessage && view.readSeq >= view.lastMessage.seq) view.unread = 0;
    renderChatList();
  }

  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") scheduleRead();
  });

  // ---------------------------------------------------------------- sending and typing

  async function send(view, body) {
    const pending = { clientId: uuid(), chatId: view.chat.id, body, status: "sending", createdAt: new Date().toISOString() };
    view.pending.set(pending.clientId, pending);
    renderMessages({ scrollToEnd: true });
    await deliver(view, pending);
  }

  /** Sends until acked; every retry reuses the clientId, so the server stores the message once. */
  async function deliver(view, pending) {
    pending.status = "sending";
    pending.error = null;
    renderMessages();
    for (let attempt = 1; ; attempt++) {
      await whenConnected();
      const res = await request("message:send", { chatId: pending.chatId, body: pending.body, clientId: pending.clientId });
      if (res.ok) {
        if (view.pending.has(pending.clientId)) {
          view.pending.delete(pending.clientId);
          const message = { id: res.data.serverId, chatId: pending.chatId, seq: res.data.seq, senderId: state.me, body: pending.body,
                            kind: "text", clientId: pending.clientId, createdAt: res.data.createdAt };
          addMessage(view, message);
          if (!view.lastMessage || message.seq >= view.lastMessage.seq) view.lastMessage = message;
        }
        break;
      }
      const retry = (res.error === "TIMEOUT" || res.error === "RATE_LIMITED" || res.error === "INTERNAL") && attempt < SEND_ATTEMPTS;
      if (!retry) {
        pending.status = "failed";
        pending.error = res.error === "RATE_LIMITED" ? "Too many messages; try again in a moment" : res.message;
        break;
      }
      if (res.error !== "TIMEOUT") await sleep(1000 * attempt);
    }
    renderMessages();
    renderChatList();
  }

  let typingChat = null;
  let typingSentAt = 0;
  let typingIdle = null;

  /** typing:start at most once per TYPING_REFRESH_MS while keys are pressed; typing:stop after a pause. */
  function onComposerInput() {
    const chatId = state.activeId;
    if (!chatId || !state.socket?.connected) return;
    if ($("composer-input").value.trim() === "") {
      stopTyping();
      return;
    }
    const now = Date.now();
    if (typingChat !== chatId || now - typingSentAt >= TYPING_REFRESH_MS) {
      if (typingChat && typingChat !== chatId) stopTyping();
      state.socket.emit("typing:start", { chatId });
      typingChat = chatId;
      typingSentAt = now;
    }
    clearTimeout(typingIdle);
    typingIdle = setTimeout(stopTyping, TYPING_IDLE_MS);
  }

  function stopTyping() {
    clearTimeout(typingIdle);
    if (typingChat && state.socket?.connected) state.socket.emit("typing:stop", { chatId: typingChat });
    typingChat = null;
    typingSentAt = 0;
  }

  const input = $("composer-input");
  input.addEventListener("input", () => {
    onComposerInput();
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, 160)}px`;
  });
  input.addEventListener("blur", stopTyping);
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("composer").requestSubmit();
    }
  });

  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    const view = state.chats.get(state.activeId);
    const body = input.value;
    if (!view || body.trim() === "") return;
    stopTyping();
    input.value = "";
    input.style.height = "auto";
    send(view, body);
  });

  $("new-chat-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = $("new-chat-error");
    error.textContent = "";
    const names = [...new Set($("new-chat-members").value.split(/[\s,;]+/).filter(Boolean))].filter((n) => n !== state.me);
    const title = $("new-chat-title").value.trim();
    if (names.length === 0) {
      error.textContent = "Type the name of someone else.";
      return;
    }
    const payload = names.length === 1 && !title
      ? { kind: "dm", memberIds: names }
      : { kind: "group", memberIds: names, title: title || [state.me, ...names].join(", ") };
    const res = await request("chat:create", payload);
    if (!res.ok) {
      error.textContent = res.message;
      return;
    }
    $("new-chat-members").value = "";
    $("new-chat-title").value = "";
    upsertChat(res.data.chat);
    await request("room:join", { chatId: res.data.chat.id });
    openChat(res.data.chat.id);
  });

  $("back-button").addEventListener("click", () => {
    stopTyping();
    state.activeId = null;
    $("layout").classList.remove("show-chat");
    renderChatList();
    renderPane();
  });

  $("load-older").addEventListener("click", async () => {
    const view = state.chats.get(state.activeId);
    if (!view?.messages.length) return;
    const scroller = $("messages-scroller");
    const fromEnd = scroller.scrollHeight - scroller.scrollTop;
    await loadHistory(view, view.messages[0].seq);
    renderMessages();
    scroller.scrollTop = scroller.scrollHeight - fromEnd;
  });

  $("chat-list").addEventListener("click", (event) => {
    const button = event.target.closest("[data-chat-id]");
    if (button) openChat(button.dataset.chatId);
  });

  // ---------------------------------------------------------------- rendering

  function renderChatList() {
    const list = $("chat-list");
    const focused = document.activeElement?.dataset?.chatId;
    const views = [...state.chats.values()].sort((a, b) => activity(b) - activity(a));
    list.replaceChildren();
    for (const view of views) {
      const { chat } = view;
      const item = el("li");
      const button = el("button", "chat-item");
      button.type = "button";
      button.dataset.chatId = chat.id;
      if (chat.id === state.activeId) button.setAttribute("aria-current", "true");

      const avatar = el("span", "avatar");
      avatar.setAttribute("aria-hidden", "true");
      const other = chat.kind === "dm" ? otherMembers(chat)[0] : undefined;
      paintAvatar(avatar, chatTitle(chat), other);

      const main = el("span", "chat-item-main");
      const top = el("span", "chat-item-top");
      top.append(el("span", "chat-item-title", chatTitle(chat)));
      if (view.lastMessage) {
        const time = el("time", "chat-item-time", shortTime(view.lastMessage.createdAt));
        time.dateTime = view.lastMessage.createdAt;
        top.append(time);
      }
      const bottom = el("span", "chat-item-bottom");
      let preview;
      if (view.typing.size) preview = el("span", "preview preview-typing", "typing…");
      else if (view.lastMessage) {
        const who = view.lastMessage.senderId === state.me ? "You: " : chat.kind === "group" ? `${view.lastMessage.senderId}: ` : "";
        preview = el("span", "preview", who + view.lastMessage.body);
      } else preview = el("span", "preview preview-empty", chat.kind === "group" ? `${chat.memberIds.length} members` : "No messages yet");
      bottom.append(preview);
      if (view.unread > 0 && chat.id !== state.activeId) {
        const badge = el("span", "badge");
        const count = el("span", undefined, view.unread > 99 ? "99+" : String(view.unread));
        count.setAttribute("aria-hidden", "true");
        badge.append(count, el("span", "visually-hidden", `, ${view.unread} unread`));
        bottom.append(badge);
      }
      main.append(top, bottom);
      button.append(avatar, main);
      if (other !== undefined && presenceText(other)) button.append(el("span", "visually-hidden", `, ${presenceText(other)}`));
      item.append(button);
      list.append(item);
      if (focused === chat.id) button.focus();
    }
    $("chat-list-empty").hidden = views.length > 0;
  }

  function renderPane() {
    const view = state.chats.get(state.activeId);
    $("chat-pane").hidden = !view;
    $("no-chat").hidden = Boolean(view);
    if (!view) {
      $("layout").classList.remove("show-chat");
      $("messages").replaceChildren();
      return;
    }
    renderHeader();
    renderMessages();
    renderTyping();
  }

  function renderHeader() {
    const view = state.chats.get(state.activeId);
    if (!view) return;
    const { chat } = view;
    $("chat-title").textContent = chatTitle(chat);
    let subtitle;
    if (chat.kind === "dm") {
      const other = otherMembers(chat)[0];
      paintAvatar($("chat-avatar"), chatTitle(chat), other);
      subtitle = presenceText(other);
    } else {
      paintAvatar($("chat-avatar"), chatTitle(chat));
      const online = otherMembers(chat).filter((id) => state.online.has(id)).length;
      subtitle = `${chat.memberIds.length} members: ${chat.memberIds.join(", ")} · ${online} online`;
    }
    $("chat-subtitle").textContent = subtitle;
  }

  function presenceText(userId) {
    if (state.online.has(userId)) return "online";
    if (!state.presenceKnown.has(userId)) return "";
    const seen = state.lastSeen.get(userId);
    return seen ? `last seen ${shortTime(seen)}` : "offline";
  }

  function renderTyping() {
    const view = state.chats.get(state.activeId);
    const who = view ? [...view.typing.keys()] : [];
    $("typing").textContent =
      who.length === 0 ? "" : who.length === 1 ? `${who[0]} is typing…` : `${who.slice(0, -1).join(", ")} and ${who.at(-1)} are typing…`;
  }

  /** Status under my newest message: Sending…, Sent, Read (DM) or Read by … (group). */
  function receiptText(view, message) {
    const readers = [...view.readBy].filter(([, seq]) => seq >= message.seq).map(([user]) => user);
    if (readers.length === 0) return "Sent";
    return view.chat.kind === "dm" ? "Read" : `Read by ${readers.join(", ")}`;
  }

  function messageNode(key) {
    const li = el("li", "message");
    li.dataset.key = key;
    const bubble = el("div", "bubble");
    const sender = el("span", "sender");
    const body = el("p", "body");
    const meta = el("span", "meta");
    const time = el("time");
    const status = el("span", "status");
    meta.append(time, status);
    bubble.append(sender, body, meta);
    li.append(bubble);
    return li;
  }

  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  /** Keyed update of the message list: nodes are kept, so screen readers hear only what is new. */
  function renderMessages({ scrollToEnd = false } = {}) {
    const view = state.chats.get(state.activeId);
    const list = $("messages");
    if (!view) return;
    const scroller = $("messages-scroller");
    const atEnd = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 40;
    $("load-older").hidden = !view.hasOlder;

    const lastMine = [...view.messages].reverse().find((m) => m.senderId === state.me);
    const rows = [
      ...view.messages.map((m) => ({ key: `m:${m.id}`, message: m, mine: m.senderId === state.me })),
      ...[...view.pending.values()].map((p) => ({ key: `p:${p.clientId}`, pending: p, mine: true })),
    ];
    const existing = new Map([...list.children].map((node) => [node.dataset.key, node]));
    let cursor = list.firstElementChild;
    let previousSender = null;
    for (const row of rows) {
      let node = existing.get(row.key);
      existing.delete(row.key);
      if (!node) {
        node = messageNode(row.key);
        if (row.message && !row.mine) {
          node.dataset.chatId = view.chat.id;
          node.dataset.seq = String(row.message.seq);
          node.dataset.id = row.message.id;
          readObserver.observe(node);
        }
      }
      const item = row.message ?? row.pending;
      node.classList.toggle("mine", row.mine);
      node.classList.toggle("pending", Boolean(row.pending));
      node.classList.toggle("failed", row.pending?.status === "failed");
      const [sender, body, meta] = node.firstElementChild.children;
      const [time, status] = meta.children;
      // In groups, name the sender of others' messages once per run of messages.
      const senderId = row.message ? row.message.senderId : state.me;
      const named = view.chat.kind === "group" && !row.mine && senderId !== previousSender;
      previousSender = senderId;
      setText(sender, named ? senderId : "");
      sender.hidden = !named;
      setText(body, item.body);
      setText(time, shortTime(item.createdAt));
      time.dateTime = item.createdAt;
      let statusText = "";
      if (row.pending) statusText = row.pending.status === "failed" ? `Not sent: ${row.pending.error ?? "error"}` : "Sending…";
      else if (row.message === lastMine && view.pending.size === 0) statusText = receiptText(view, row.message);
      setText(status, statusText);
      status.classList.toggle("read", statusText.startsWith("Read"));
      if (row.pending?.status === "failed" && !node.querySelector(".retry")) {
        const retry = el("button", "link-button retry", "Retry");
        retry.type = "button";
        retry.addEventListener("click", () => {
          retry.remove();
          deliver(view, row.pending);
        });
        meta.append(retry);
      } else if (row.pending?.status !== "failed") node.querySelector(".retry")?.remove();
      if (node !== cursor) list.insertBefore(node, cursor);
      else cursor = cursor.nextElementSibling;
    }
    for (const node of existing.values()) {
      readObserver.unobserve(node);
      node.remove();
    }
    if (scrollToEnd || atEnd) scroller.scrollTop = scroller.scrollHeight;
  }

  // ---------------------------------------------------------------- boot

  // For tests and the curious: the live socket.
  window.chatDemo = { get socket() { return state.socket; }, get me() { return state.me; } };

  const saved = (() => {
    try {
      return JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? "null");
    } catch {
      return null;
    }
  })();
  const claims = saved && tokenClaims(saved.token);
  if (saved && claims && (!claims.exp || claims.exp * 1000 > Date.now())) start(saved);
  else showSignIn();
})();
