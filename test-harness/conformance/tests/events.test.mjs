// PROTOCOL.md §3: every client → server event, its ack data and its lookup errors.

import { describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  CFG, spec, uuid, userId, call, assertOk, assertErr, assertKeys, assertChat, assertMessage,
  assertSameSet, assertIsoMs, assertTimeNow, waitFor, expectNo, send, joinRoom, seedChat, http,
  UUID7_RE, show, mark,
} from './helpers.mjs';

describe('§3 room:join', () => {
  spec('room:join by a member acks { chatId, lastSeq, memberIds }', async (c) => {
    const [a, b, d] = [c.user('a'), c.user('b'), c.user('d')];
    const chat = await c.group(a, [b, d]);
    const sa = await c.connect(a);
    await send(sa, chat.id, 'one');
    await send(sa, chat.id, 'two');
    const sb = await c.connect(b);
    const data = assertOk(await call(sb, 'room:join', { chatId: chat.id }));
    assertKeys(data, ['chatId', 'lastSeq', 'memberIds'], 'room:join data');
    assert.equal(data.chatId, chat.id);
    assert.equal(data.lastSeq, 2);
    assertSameSet(data.memberIds, [a.id, b.id, d.id], 'memberIds');
  });

  spec('room:join of an empty chat has lastSeq 0', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const chat = await c.dm(a, b);
    const sa = await c.connect(a);
    const data = assertOk(await call(sa, 'room:join', { chatId: chat.id }));
    assert.equal(data.lastSeq, 0);
    assertSameSet(data.memberIds, [a.id, b.id], 'memberIds');
  });

  spec('room:join by a non-member is FORBIDDEN', async (c) => {
    const [a, b, x] = [c.user('a'), c.user('b'), c.user('x')];
    const chat = await c.group(a, [b]);
    const sx = await c.connect(x);
    assertErr(await call(sx, 'room:join', { chatId: chat.id }), 'FORBIDDEN');
  });

  spec('a FORBIDDEN room:join does not put the socket in the room', async (c) => {
    const [a, b, x] = [c.user('a'), c.user('b'), c.user('x')];
    const chat = await c.group(a, [b]);
    const sx = await c.connect(x);
    assertErr(await call(sx, 'room:join', { chatId: chat.id }), 'FORBIDDEN');
    const sa = await c.connect(a);
    await send(sa, chat.id, 'secret');
    await expectNo(sx, 'message:new', CFG.quietMs);
  });

  spec('room:join of an unknown chat is NOT_FOUND', async (c) => {
    const a = c.user('a');
    const s = await c.connect(a);
    assertErr(await call(s, 'room:join', { chatId: uuid() }), 'NOT_FOUND');
  });

  spec('room:join makes the socket receive message:new of the chat', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const chat = await c.group(a, [b]);
    const sa = await c.connect(a);
    const sb = await c.connect(b);
    await joinRoom(sb, chat.id);
    const m = await send(sa, chat.id, 'after join');
    const got = await waitFor(sb, 'message:new', (p) => p.clientId === m.clientId);
    assert.equal(got.body, 'after join');
  });

  spec('room:join twice is harmless (one message:new per message)', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const chat = await c.group(a, [b]);
    const sa = await c.connect(a);
    const sb = await c.connect(b);
    await joinRoom(sb, chat.id);
    await joinRoom(sb, chat.id);
    const m = await send(sa, chat.id);
    await waitFor(sb, 'message:new', (p) => p.clientId === m.clientId);
    await expectNo(sb, 'message:new', CFG.quietMs, (p) => p.clientId === m.clientId, { since: mark(sb) });
  });
});

describe('§3 room:leave', () => {
  spec('room:leave acks ok and stops message:new on that socket', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const chat = await c.group(a, [b]);
    const sa = await c.connect(a);
    const sb = await c.connect(b, { autoJoin: true });
    const first = await send(sa, chat.id, 'before leave');
    await waitFor(sb, 'message:new', (p) => p.clientId === first.clientId);
    const ack = await call(sb, 'room:leave', { chatId: chat.id });
    assertOk(ack, 'room:leave');
    assert.equal(ack.data ?? undefined, undefined, `room:leave has no data: ${show(ack)}`);
    const second = await send(sa, chat.id, 'after leave');
    await waitFor(sb, 'inbox:update', (p) => p.lastMessage.clientId === second.clientId);
    await expectNo(sb, 'message:new', CFG.quietMs, (p) => p.clientId === second.clientId);
  });

  spec('room:leave is idempotent (twice, and without having joined)', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const chat = await c.group(a, [b]);
    const sb = await c.connect(b);
    assertOk(await call(sb, 'room:leave', { chatId: chat.id }), 'leave without join');
    await joinRoom(sb, chat.id);
    assertOk(await call(sb, 'room:leave', { chatId: chat.id }), 'first leave');
    assertOk(await call(sb, 'room:leave', { chatId: chat.id }), 'second leave');
  });

  spec('room:leave leaves the socket room, not the chat', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const chat = await c.group(a, [b]);
    const sb = await c.connect(b, { autoJoin: true });
    assertOk(await call(sb, 'room:leave', { chatId: chat.id }));
    // Still a member: may join again and send.
    const data = await joinRoom(sb, chat.id);
    assert.ok(data.memberIds.includes(b.id));
    await send(sb, chat.id, 'still a member');
    const res = await http('GET', `/api/v1/chats/${chat.id}/messages`, { token: b.token });
    assert.equal(res.status, 200);
  });

  spec('room:leave affects only that socket, not the user\'s other sockets', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const chat = await c.group(a, [b]);
    const sb1 = await c.connect(b, { autoJoin: true });
    const sb2 = await c.connect(b, { autoJoin: true });
    assertOk(await call(sb1, 'room:leave', { chatId: chat.id }));
    const sa = await c.connect(a);
    const m = await send(sa, chat.id);
    await waitFor(sb2, 'message:new', (p) => p.clientId === m.clientId);
    await expectNo(sb1, 'message:new', CFG.quietMs, (p) => p.clientId === m.clientId);
  });
});

describe('§3 message:send', () => {
  spec('message:send acks { clientId, serverId, seq, createdAt }', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const chat = await c.group(a, [b]);
    const s = await c.connect(a);
    const clientId = uuid();
    const data = assertOk(await call(s, 'message:send', { chatId: chat.id, body: 'hi', clientId }));
    assertKeys(data, ['clientId', 'serverId', 'seq', 'createdAt'], 'message:send data');
    assert.equal(data.clientId, clientId);
    assert.match(data.serverId, UUID7_RE, 'serverId must be a UUIDv7');
    assert.equal(data.seq, 1);
    assertIsoMs(data.createdAt, 'createdAt');
    assert.ok(Math.abs(Date.parse(data.createdAt) - Date.now()) < 10 * 60 * 1000, 'createdAt is now-ish');
  });

  spec('message:send to an unknown chat is NOT_FOUND', async (c) => {
    const a = c.user('a');
    const s = await c.connect(a);
    assertErr(await call(s, 'message:send', { chatId: uuid(), body: 'hi', clientId: uuid() }), 'NOT_FOUND');
  });

  spec('message:send by a non-member is FORBIDDEN', async (c) => {
    const [a, b, x] = [c.user('a'), c.user('b'), c.user('x')];
    const chat = await c.group(a, [b]);
    const sb = await c.connect(b, { autoJoin: true });
    const sx = await c.connect(x);
    const clientId = uuid();
    assertErr(await call(sx, 'message:send', { chatId: chat.id, body: 'intruder', clientId }), 'FORBIDDEN');
    await expectNo(sb, 'message:new', CFG.quietMs, (p) => p.clientId === clientId);
  });

  spec('message kind defaults to "text"', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const chat = await c.group(a, [b]);
    const s = await c.connect(a, { autoJoin: true });
    const m = await send(s, chat.id, 'plain');
    const got = await waitFor(s, 'message:new', (p) => p.clientId === m.clientId);
    assert.equal(got.kind, 'text');
  });

  spec('message kind "text" given explicitly is accepted', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const chat = await c.group(a, [b]);
    const s = await c.connect(a, { autoJoin: true });
    const m = await send(s, chat.id, 'explicit', { kind: 'text' });
    const got = await waitFor(s, 'message:new', (p) => p.clientId === m.clientId);
    assert.equal(got.kind, 'text');
  });
});

describe('§3 receipt:read', () => {
  spec('receipt:read acks { readAt, messageId, seq }', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const chat = await c.group(a, [b]);
    const sa = await c.connect(a);
    const m = await send(sa, chat.id);
    const sb = await c.connect(b);
    const data = assertOk(await call(sb, 'receipt:read', { chatId: chat.id, messageId: m.data.serverId }));
    assertKeys(data, ['readAt', 'messageId', 'seq'], 'receipt:read data');
    assert.equal(data.messageId, m.data.serverId);
    assert.equal(data.seq, 1);
    assertTimeNow(data.readAt, 'readAt');
  });

  spec('receipt:read of an unknown chat is NOT_FOUND', async (c) => {
    const a = c.user('a');
    const s = await c.connect(a);
    assertErr(await call(s, 'receipt:read', { chatId: uuid(), messageId: uuid() }), 'NOT_FOUND');
  });

  spec('receipt:read by a non-member is FORBIDDEN', async (c) => {
    const [a, b, x] = [c.user('a'), c.user('b'), c.user('x')];
    const chat = await c.group(a, [b]);
    const sa = await c.connect(a);
    const m = await send(sa, chat.id);
    const sx = await c.connect(x);
    assertErr(await call(sx, 'receipt:read', { chatId: chat.id, messageId: m.data.serverId }), 'FORBIDDEN');
  });

  spec('receipt:read of an unknown message in a known chat is NOT_FOUND', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const chat = await c.group(a, [b]);
    const sa = await c.connect(a);
    await send(sa, chat.id);
    const sb = await c.connect(b);
    assertErr(await call(sb, 'receipt:read', { chatId: chat.id, messageId: uuid() }), 'NOT_FOUND');
  });
});

describe('§3 presence:ping', () => {
  spec('presence:ping acks { serverTime }', async (c) => {
    const a = c.user('a');
    const s = await c.connect(a);
    const data = assertOk(await call(s, 'presence:ping', {}));
    assertKeys(data, ['serverTime'], 'presence:ping data');
    assertTimeNow(data.serverTime, 'serverTime');
  });
});

describe('§3 chat:create', () => {
  spec('chat:create dm acks { chat } with both members, no title, createdBy the caller', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const s = await c.connect(a);
    const data = assertOk(await call(s, 'chat:create', { kind: 'dm', memberIds: [b.id] }));
    assertKeys(data, ['chat'], 'chat:create data');
    assertChat(data.chat, { kind: 'dm', title: null, createdBy: a.id, memberIds: [a.id, b.id] });
  });

  spec('chat:create dm again returns the same chat', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const s = await c.connect(a);
    const first = assertOk(await call(s, 'chat:create', { kind: 'dm', memberIds: [b.id] })).chat;
    const again = assertOk(await call(s, 'chat:create', { kind: 'dm', memberIds: [b.id] })).chat;
    assert.equal(again.id, first.id);
  });

  spec('chat:create dm from the other side returns the same chat', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const sa = await c.connect(a);
    const sb = await c.connect(b);
    const first = assertOk(await call(sa, 'chat:create', { kind: 'dm', memberIds: [b.id] })).chat;
    const other = assertOk(await call(sb, 'chat:create', { kind: 'dm', memberIds: [a.id] })).chat;
    assert.equal(other.id, first.id);
    assert.equal(other.createdBy, a.id);
  });

  spec('chat:create dm concurrently from both sides yields one chat', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const sa = await c.connect(a);
    const sb = await c.connect(b);
    const [x, y] = await Promise.all([
      call(sa, 'chat:create', { kind: 'dm', memberIds: [b.id] }),
      call(sb, 'chat:create', { kind: 'dm', memberIds: [a.id] }),
    ]);
    assert.equal(assertOk(x).chat.id, assertOk(y).chat.id);
  });

  spec('chat:create group acks { chat } with the creator as a member', async (c) => {
    const [a, b, d] = [c.user('a'), c.user('b'), c.user('d')];
    const s = await c.connect(a);
    const data = assertOk(await call(s, 'chat:create', { kind: 'group', memberIds: [b.id, d.id], title: 'Team' }));
    assertChat(data.chat, { kind: 'group', title: 'Team', createdBy: a.id, memberIds: [a.id, b.id, d.id] });
  });

  spec('chat:create group twice with the same members makes two chats', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const s = await c.connect(a);
    const one = assertOk(await call(s, 'chat:create', { kind: 'group', memberIds: [b.id], title: 'same' })).chat;
    const two = assertOk(await call(s, 'chat:create', { kind: 'group', memberIds: [b.id], title: 'same' })).chat;
    assert.notEqual(one.id, two.id);
  });

  spec('a chat made with chat:create is usable at once (room:join, send)', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const s = await c.connect(a);
    const chat = assertOk(await call(s, 'chat:create', { kind: 'group', memberIds: [b.id], title: 'now' })).chat;
    const joined = await joinRoom(s, chat.id);
    assert.equal(joined.lastSeq, 0);
    const m = await send(s, chat.id);
    assert.equal(m.data.seq, 1);
  });
});

describe('§3 messages:sync', () => {
  spec('messages:sync returns messages with seq > afterSeq, ascending, as { messages, hasMore }', async (c) => {
    const { chat, sockets } = await seedChat(c, 5);
    const data = assertOk(await call(sockets[0], 'messages:sync', { chatId: chat.id, afterSeq: 2 }));
    assertKeys(data, ['messages', 'hasMore'], 'messages:sync data');
    assert.deepEqual(data.messages.map((m) => m.seq), [3, 4, 5]);
    assert.deepEqual(data.messages.map((m) => m.body), ['m3', 'm4', 'm5']);
    for (const m of data.messages) assertMessage(m, { chatId: chat.id });
    assert.equal(data.hasMore, false);
  });

  spec('messages:sync with afterSeq 0 returns from the first message', async (c) => {
    const { chat, sockets } = await seedChat(c, 3);
    const data = assertOk(await call(sockets[0], 'messages:sync', { chatId: chat.id, afterSeq: 0 }));
    assert.deepEqual(data.messages.map((m) => m.seq), [1, 2, 3]);
    assert.equal(data.hasMore, false);
  });

  spec('messages:sync honours limit and says hasMore when newer messages remain', async (c) => {
    const { chat, sockets } = await seedChat(c, 5);
    const page1 = assertOk(await call(sockets[0], 'messages:sync', { chatId: chat.id, afterSeq: 0, limit: 2 }));
    assert.deepEqual(page1.messages.map((m) => m.seq), [1, 2]);
    assert.equal(page1.hasMore, true);
    const page2 = assertOk(await call(sockets[0], 'messages:sync', { chatId: chat.id, afterSeq: 2, limit: 2 }));
    assert.deepEqual(page2.messages.map((m) => m.seq), [3, 4]);
    assert.equal(page2.hasMore, true);
    const page3 = assertOk(await call(sockets[0], 'messages:sync', { chatId: chat.id, afterSeq: 4, limit: 2 }));
    assert.deepEqual(page3.messages.map((m) => m.seq), [5]);
    assert.equal(page3.hasMore, false);
  });

  spec('messages:sync with limit exactly the remaining count has hasMore false', async (c) => {
    const { chat, sockets } = await seedChat(c, 4);
    const data = assertOk(await call(sockets[0], 'messages:sync', { chatId: chat.id, afterSeq: 1, limit: 3 }));
    assert.deepEqual(data.messages.map((m) => m.seq), [2, 3, 4]);
    assert.equal(data.hasMore, false);
  });

  spec('messages:sync limit defaults to 50', async (c) => {
    const { chat, sockets } = await seedChat(c, 53);
    const data = assertOk(await call(sockets[0], 'messages:sync', { chatId: chat.id, afterSeq: 0 }));
    assert.equal(data.messages.length, 50);
    assert.deepEqual(data.messages.map((m) => m.seq), Array.from({ length: 50 }, (_, i) => i + 1));
    assert.equal(data.hasMore, true);
  });

  spec('messages:sync accepts the limit bounds 1 and 200', async (c) => {
    const { chat, sockets } = await seedChat(c, 3);
    const one = assertOk(await call(sockets[0], 'messages:sync', { chatId: chat.id, afterSeq: 0, limit: 1 }));
    assert.deepEqual(one.messages.map((m) => m.seq), [1]);
    assert.equal(one.hasMore, true);
    const max = assertOk(await call(sockets[0], 'messages:sync', { chatId: chat.id, afterSeq: 0, limit: 200 }));
    assert.deepEqual(max.messages.map((m) => m.seq), [1, 2, 3]);
    assert.equal(max.hasMore, false);
  });

  spec('messages:sync past the last message returns [] and hasMore false', async (c) => {
    const { chat, sockets } = await seedChat(c, 2);
    const data = assertOk(await call(sockets[0], 'messages:sync', { chatId: chat.id, afterSeq: 2 }));
    assert.deepEqual(data.messages, []);
    assert.equal(data.hasMore, false);
    const far = assertOk(await call(sockets[0], 'messages:sync', { chatId: chat.id, afterSeq: 1000 }));
    assert.deepEqual(far.messages, []);
    assert.equal(far.hasMore, false);
  });

  spec('messages:sync of an empty chat returns []', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const chat = await c.group(a, [b]);
    const s = await c.connect(a);
    const data = assertOk(await call(s, 'messages:sync', { chatId: chat.id, afterSeq: 0 }));
    assert.deepEqual(data, { messages: [], hasMore: false });
  });

  spec('messages:sync by a non-member is FORBIDDEN', async (c) => {
    const { chat } = await seedChat(c, 1);
    const x = c.user('x');
    const sx = await c.connect(x);
    assertErr(await call(sx, 'messages:sync', { chatId: chat.id, afterSeq: 0 }), 'FORBIDDEN');
  });

  spec('messages:sync of an unknown chat is NOT_FOUND', async (c) => {
    const a = c.user('a');
    const s = await c.connect(a);
    assertErr(await call(s, 'messages:sync', { chatId: uuid(), afterSeq: 0 }), 'NOT_FOUND');
  });

  spec('messages:sync does not need room:join', async (c) => {
    const { chat, users } = await seedChat(c, 2);
    const s = await c.connect(users[0]);
    const data = assertOk(await call(s, 'messages:sync', { chatId: chat.id, afterSeq: 0 }));
    assert.equal(data.messages.length, 2);
  });
});
