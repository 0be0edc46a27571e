// PROTOCOL.md §4: server → client events, their exact payload shapes and who gets them.

import { describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  CFG, spec, call, assertOk, assertKeys, assertChat, assertMessage, assertSameSet, assertIsoNow,
  assertTimeNow, waitFor, expectNo, send, joinRoom, http, mark, show, received,
} from './helpers.mjs';

describe('§4 message:new', () => {
  spec('message:new carries a Message { id, chatId, seq, senderId, body, kind, clientId, createdAt }', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const chat = await c.group(a, [b]);
    const sb = await c.connect(b, { autoJoin: true });
    const sa = await c.connect(a);
    const m = await send(sa, chat.id, 'shape check');
    const got = await waitFor(sb, 'message:new', (p) => p.clientId === m.clientId);
    assertMessage(got, {
      id: m.data.serverId,
      chatId: chat.id,
      seq: m.data.seq,
      senderId: a.id,
      body: 'shape check',
      kind: 'text',
      clientId: m.clientId,
      createdAt: m.data.createdAt,
    });
  });

  spec('message:new goes to every socket in the chat room, the sender\'s included', async (c) => {
    const [a, b, d] = [c.user('a'), c.user('b'), c.user('d')];
    const chat = await c.group(a, [b, d]);
    const sa1 = await c.connect(a, { autoJoin: true });
    const sa2 = await c.connect(a, { autoJoin: true });
    const sb = await c.connect(b, { autoJoin: true });
    const sd = await c.connect(d, { autoJoin: true });
    const m = await send(sa1, chat.id);
    for (const s of [sa1, sa2, sb, sd]) await waitFor(s, 'message:new', (p) => p.clientId === m.clientId);
  });

  spec('message:new does not leak to sockets of other chats', async (c) => {
    const [a, b, x] = [c.user('a'), c.user('b'), c.user('x')];
    const chat = await c.group(a, [b]);
    await c.group(x, [a]);
    const sx = await c.connect(x, { autoJoin: true });
    const sa = await c.connect(a);
    const m = await send(sa, chat.id);
    await expectNo(sx, 'message:new', CFG.quietMs, (p) => p.clientId === m.clientId);
    await expectNo(sx, 'inbox:update', 0, (p) => p.chatId === chat.id);
  });
});

describe('§4 inbox:update', () => {
  spec('inbox:update { chatId, lastMessage, unreadCount } goes to every member, joined or not', async (c) => {
    const [a, b, d] = [c.user('a'), c.user('b'), c.user('d')];
    const chat = await c.group(a, [b, d]);
    const sa = await c.connect(a);
    const sb = await c.connect(b, { autoJoin: true });
    const sd = await c.connect(d);
    const m = await send(sa, chat.id, 'inbox');
    for (const [s, who] of [[sa, 'sender'], [sb, 'joined member'], [sd, 'not joined member']]) {
      const upd = await waitFor(s, 'inbox:update', (p) => p.lastMessage.clientId === m.clientId);
      assertKeys(upd, ['chatId', 'lastMessage', 'unreadCount'], `inbox:update to ${who}`);
      assert.equal(upd.chatId, chat.id);
      assertMessage(upd.lastMessage, { id: m.data.serverId, seq: m.data.seq, body: 'inbox', senderId: a.id, chatId: chat.id });
    }
  });

  spec('inbox:update carries each member\'s own unreadCount', async (c) => {
    const [a, b, d] = [c.user('a'), c.user('b'), c.user('d')];
    const chat = await c.group(a, [b, d]);
    const sa = await c.connect(a);
    const sb = await c.connect(b);
    const sd = await c.connect(d);
    const m1 = await send(sa, chat.id, 'one');
    assertOk(await call(sb, 'receipt:read', { chatId: chat.id, messageId: m1.data.serverId }));
    const m2 = await send(sa, chat.id, 'two');
    const ua = await waitFor(sa, 'inbox:update', (p) => p.lastMessage.clientId === m2.clientId);
    const ub = await waitFor(sb, 'inbox:update', (p) => p.lastMessage.clientId === m2.clientId);
    const ud = await waitFor(sd, 'inbox:update', (p) => p.lastMessage.clientId === m2.clientId);
    assert.equal(ua.unreadCount, 0, 'sender: own messages are never unread');
    assert.equal(ub.unreadCount, 1, 'b read m1, so only m2 is unread');
    assert.equal(ud.unreadCount, 2, 'd read nothing');
  });

  spec('inbox:update reaches every socket of a member (multi-device)', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const chat = await c.dm(a, b);
    const sb1 = await c.connect(b);
    const sb2 = await c.connect(b);
    const sa = await c.connect(a);
    const m = await send(sa, chat.id);
    await waitFor(sb1, 'inbox:update', (p) => p.lastMessage.clientId === m.clientId);
    await waitFor(sb2, 'inbox:update', (p) => p.lastMessage.clientId === m.clientId);
  });

  spec('inbox:update does not go to non-members', async (c) => {
    const [a, b, x] = [c.user('a'), c.user('b'), c.user('x')];
    const chat = await c.group(a, [b]);
    const sx = await c.connect(x);
    const sa = await c.connect(a);
    const m = await send(sa, chat.id);
    await waitFor(sa, 'inbox:update', (p) => p.lastMessage.clientId === m.clientId);
    await expectNo(sx, 'inbox:update', CFG.quietMs);
  });
});

describe('§4 chat:update', () => {
  spec('chat:update { chat } goes to every member when the title changes', async (c) => {
    const [a, b, d] = [c.user('a'), c.user('b'), c.user('d')];
    const chat = await c.group(a, [b, d], 'old');
    const sa = await c.connect(a);
    const sb = await c.connect(b);
    const sd = await c.connect(d);
    const res = await http('PATCH', `/api/v1/chats/${chat.id}`, { token: b.token, body: { title: 'new' } });
    assert.equal(res.status, 200, res.text);
    for (const s of [sa, sb, sd]) {
      const upd = await waitFor(s, 'chat:update', (p) => p.chat.id === chat.id && p.chat.title === 'new');
      assertKeys(upd, ['chat'], 'chat:update');
      assertChat(upd.chat, { kind: 'group', title: 'new', createdBy: a.id, memberIds: [a.id, b.id, d.id] });
    }
  });

  spec('chat:update goes to old and new members when a member is added', async (c) => {
    const [a, b, n] = [c.user('a'), c.user('b'), c.user('new')];
    const chat = await c.group(a, [b]);
    const sa = await c.connect(a);
    const sb = await c.connect(b);
    const sn = await c.connect(n);
    const res = await http('POST', `/api/v1/chats/${chat.id}/members`, { token: b.token, body: { userId: n.id } });
    assert.equal(res.status, 200, res.text);
    for (const s of [sa, sb, sn]) {
      const upd = await waitFor(s, 'chat:update', (p) => p.chat.id === chat.id && p.chat.memberIds.includes(n.id));
      assertSameSet(upd.chat.memberIds, [a.id, b.id, n.id], 'memberIds');
    }
  });

  spec('chat:update goes to old and new members when a member is removed (the removed one included)', async (c) => {
    const [a, b, d] = [c.user('a'), c.user('b'), c.user('d')];
    const chat = await c.group(a, [b, d]);
    const sa = await c.connect(a);
    const sb = await c.connect(b);
    const sd = await c.connect(d);
    const res = await http('DELETE', `/api/v1/chats/${chat.id}/members/${d.id}`, { token: a.token });
    assert.equal(res.status, 200, res.text);
    for (const s of [sa, sb, sd]) {
      const upd = await waitFor(s, 'chat:update', (p) => p.chat.id === chat.id && !p.chat.memberIds.includes(d.id));
      assertSameSet(upd.chat.memberIds, [a.id, b.id], 'memberIds');
    }
  });

  spec('chat:update does not go to non-members', async (c) => {
    const [a, b, x] = [c.user('a'), c.user('b'), c.user('x')];
    const chat = await c.group(a, [b], 'old');
    const sx = await c.connect(x);
    const sa = await c.connect(a);
    const res = await http('PATCH', `/api/v1/chats/${chat.id}`, { token: a.token, body: { title: 'new' } });
    assert.equal(res.status, 200, res.text);
    await waitFor(sa, 'chat:update', (p) => p.chat.id === chat.id);
    await expectNo(sx, 'chat:update', CFG.quietMs);
  });
});

describe('§4 typing:update and receipt:update', () => {
  spec('typing:update is { chatId, userId, state }', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const chat = await c.group(a, [b]);
    const sa = await c.connect(a, { autoJoin: true });
    const sb = await c.connect(b, { autoJoin: true });
    sa.emit('typing:start', { chatId: chat.id });
    const upd = await waitFor(sb, 'typing:update', (p) => p.userId === a.id);
    assert.deepEqual(upd, { chatId: chat.id, userId: a.id, state: 'start' });
  });

  spec('typing:update goes to other members in the room, never to the typer\'s other device', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const chat = await c.group(a, [b]);
    const sa1 = await c.connect(a, { autoJoin: true });
    const sa2 = await c.connect(a, { autoJoin: true });
    const sb = await c.connect(b, { autoJoin: true });
    sa1.emit('typing:start', { chatId: chat.id });
    await waitFor(sb, 'typing:update', (p) => p.userId === a.id && p.state === 'start');
    sa1.emit('typing:stop', { chatId: chat.id });
    await waitFor(sb, 'typing:update', (p) => p.userId === a.id && p.state === 'stop');
    await expectNo(sa2, 'typing:update', CFG.quietMs);
    await expectNo(sa1, 'typing:update', 0);
  });

  spec('typing:update does not reach members outside the room', async (c) => {
    const [a, b, d] = [c.user('a'), c.user('b'), c.user('d')];
    const chat = await c.group(a, [b, d]);
    const sa = await c.connect(a, { autoJoin: true });
    const sb = await c.connect(b, { autoJoin: true });
    const sd = await c.connect(d);
    sa.emit('typing:start', { chatId: chat.id });
    await waitFor(sb, 'typing:update', (p) => p.userId === a.id);
    await expectNo(sd, 'typing:update', CFG.quietMs);
  });

  spec('receipt:update is { chatId, userId, messageId, seq, readAt } to the chat room', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const chat = await c.group(a, [b]);
    const sa = await c.connect(a, { autoJoin: true });
    const sb = await c.connect(b);
    const m = await send(sa, chat.id);
    const ack = assertOk(await call(sb, 'receipt:read', { chatId: chat.id, messageId: m.data.serverId }));
    const upd = await waitFor(sa, 'receipt:update', (p) => p.userId === b.id);
    assertKeys(upd, ['chatId', 'userId', 'messageId', 'seq', 'readAt'], 'receipt:update');
    assert.equal(upd.chatId, chat.id);
    assert.equal(upd.messageId, m.data.serverId);
    assert.equal(upd.seq, 1);
    assertTimeNow(upd.readAt, 'readAt');
    assert.deepEqual(upd.readAt, ack.readAt, 'receipt:update.readAt equals the ack\'s readAt');
  });
});

describe('§4 presence:update and presence:snapshot', () => {
  spec('presence:update is { userId, status, lastSeenAt } to contacts', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    await c.dm(a, b);
    const sb = await c.connect(b);
    await c.connect(a);
    const upd = await waitFor(sb, 'presence:update', (p) => p.userId === a.id && p.status === 'online');
    assertKeys(upd, ['userId', 'status', 'lastSeenAt'], 'presence:update');
    assertIsoNow(upd.lastSeenAt, 'lastSeenAt');
  });

  spec('presence:update reaches contacts only: a non-contact gets nothing', async (c) => {
    const [a, b, x] = [c.user('a'), c.user('b'), c.user('x')];
    await c.dm(a, b);
    const sb = await c.connect(b);
    const sx = await c.connect(x);
    await c.connect(a);
    await waitFor(sb, 'presence:update', (p) => p.userId === a.id && p.status === 'online');
    await expectNo(sx, 'presence:update', CFG.quietMs, (p) => p.userId === a.id);
  });

  spec('presence:update reaches contacts through any shared chat, without joining rooms', async (c) => {
    const [a, b, d] = [c.user('a'), c.user('b'), c.user('d')];
    await c.group(b, [a, d]);
    const sd = await c.connect(d);
    await c.connect(a);
    await waitFor(sd, 'presence:update', (p) => p.userId === a.id && p.status === 'online');
  });

  spec('presence:snapshot is { online: [...] } and is sent only to the connecting socket', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    await c.dm(a, b);
    const sb = await c.connect(b);
    await waitFor(sb, 'presence:snapshot');
    const since = mark(sb);
    const sa = await c.connect(a);
    const snap = await waitFor(sa, 'presence:snapshot');
    assertKeys(snap, ['online'], 'presence:snapshot');
    assert.ok(Array.isArray(snap.online) && snap.online.includes(b.id), `snapshot ${show(snap)} must list b`);
    assert.equal(received(sa, 'presence:snapshot').length, 1, 'exactly one snapshot per connect');
    await expectNo(sb, 'presence:snapshot', CFG.quietMs, () => true, { since });
  });
});
