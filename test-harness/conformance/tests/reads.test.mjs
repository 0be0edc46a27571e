// PROTOCOL.md §7: read cursors, receipt:update, unread counts.

import { describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  CFG, spec, call, assertOk, waitFor, expectNo, send, mark, chatEntry, show,
} from './helpers.mjs';

/** A group of a (sender) and b (reader) with `n` messages from a; a's socket is in the room. */
async function setup(c, n) {
  const [a, b] = [c.user('sender'), c.user('reader')];
  const chat = await c.group(a, [b]);
  const sa = await c.connect(a, { autoJoin: true });
  const sb = await c.connect(b);
  const msgs = [];
  for (let i = 0; i < n; i++) msgs.push(await send(sa, chat.id, `msg ${i + 1}`));
  return { a, b, chat, sa, sb, msgs };
}

const read = (s, chatId, m) => call(s, 'receipt:read', { chatId, messageId: m.data.serverId });

describe('§7 read cursors', () => {
  spec('receipt:read moves the cursor forward and sends receipt:update to the room', async (c) => {
    const { b, chat, sa, sb, msgs } = await setup(c, 3);
    const ack = assertOk(await read(sb, chat.id, msgs[1]));
    assert.equal(ack.seq, 2);
    assert.equal(ack.messageId, msgs[1].data.serverId);
    const upd = await waitFor(sa, 'receipt:update', (p) => p.userId === b.id && p.seq === 2);
    assert.equal(upd.messageId, msgs[1].data.serverId);
    assert.equal(upd.chatId, chat.id);
    const ack2 = assertOk(await read(sb, chat.id, msgs[2]));
    assert.equal(ack2.seq, 3);
    await waitFor(sa, 'receipt:update', (p) => p.userId === b.id && p.seq === 3);
  });

  spec('receipt:read of an older message acks the current cursor and broadcasts nothing', async (c) => {
    const { b, chat, sa, sb, msgs } = await setup(c, 3);
    const cur = assertOk(await read(sb, chat.id, msgs[2]));
    await waitFor(sa, 'receipt:update', (p) => p.userId === b.id && p.seq === 3);
    const since = mark(sa);
    const older = assertOk(await read(sb, chat.id, msgs[0]));
    assert.equal(older.seq, 3, `cursor stays at 3: ${show(older)}`);
    assert.equal(older.messageId, msgs[2].data.serverId);
    assert.equal(older.readAt, cur.readAt, 'readAt of the current cursor');
    await expectNo(sa, 'receipt:update', CFG.quietMs, (p) => p.userId === b.id, { since });
  });

  spec('receipt:read of the same message again acks the current cursor and broadcasts nothing', async (c) => {
    const { b, chat, sa, sb, msgs } = await setup(c, 2);
    const cur = assertOk(await read(sb, chat.id, msgs[1]));
    await waitFor(sa, 'receipt:update', (p) => p.userId === b.id && p.seq === 2);
    const since = mark(sa);
    const same = assertOk(await read(sb, chat.id, msgs[1]));
    assert.deepEqual(same, cur);
    await expectNo(sa, 'receipt:update', CFG.quietMs, (p) => p.userId === b.id, { since });
  });

  spec('cursors are per member: one member reading does not move another\'s', async (c) => {
    const [a, b, d] = [c.user('a'), c.user('b'), c.user('d')];
    const chat = await c.group(a, [b, d]);
    const sa = await c.connect(a);
    for (let i = 0; i < 3; i++) await send(sa, chat.id);
    const sb = await c.connect(b);
    const last = assertOk(await call(sa, 'messages:sync', { chatId: chat.id, afterSeq: 2 })).messages[0];
    assertOk(await call(sb, 'receipt:read', { chatId: chat.id, messageId: last.id }));
    assert.equal((await chatEntry(b, chat.id)).unreadCount, 0);
    assert.equal((await chatEntry(d, chat.id)).unreadCount, 3);
  });
});

describe('§7 unread counts', () => {
  spec('unreadCount counts messages above the cursor (GET /api/v1/chats)', async (c) => {
    const { b, chat, sb, msgs } = await setup(c, 4);
    assert.equal((await chatEntry(b, chat.id)).unreadCount, 4);
    assertOk(await read(sb, chat.id, msgs[1]));
    assert.equal((await chatEntry(b, chat.id)).unreadCount, 2);
    assertOk(await read(sb, chat.id, msgs[3]));
    assert.equal((await chatEntry(b, chat.id)).unreadCount, 0);
  });

  spec('unreadCount excludes the member\'s own messages', async (c) => {
    const { a, b, chat, sb } = await setup(c, 2);
    await send(sb, chat.id, 'mine');
    await send(sb, chat.id, 'mine too');
    assert.equal((await chatEntry(a, chat.id)).unreadCount, 2, 'a: b\'s two messages');
    assert.equal((await chatEntry(b, chat.id)).unreadCount, 2, 'b: a\'s two messages, not its own');
  });

  spec('sending does not move the sender\'s cursor', async (c) => {
    const { a, b, chat, sa, sb } = await setup(c, 3);
    // b sends after a's three messages: if that moved b's cursor, b would have 0 unread.
    await send(sb, chat.id, 'reply');
    assert.equal((await chatEntry(b, chat.id)).unreadCount, 3);
    const m = await send(sa, chat.id, 'four');
    const upd = await waitFor(sb, 'inbox:update', (p) => p.lastMessage.clientId === m.clientId);
    assert.equal(upd.unreadCount, 4);
    assert.equal((await chatEntry(a, chat.id)).unreadCount, 1, 'a: only b\'s reply');
  });

  spec('inbox:update unreadCount follows the reader\'s cursor', async (c) => {
    const { chat, sa, sb, msgs } = await setup(c, 2);
    assertOk(await read(sb, chat.id, msgs[1]));
    const m = await send(sa, chat.id, 'after the read');
    const upd = await waitFor(sb, 'inbox:update', (p) => p.lastMessage.clientId === m.clientId);
    assert.equal(upd.unreadCount, 1);
    const own = await waitFor(sa, 'inbox:update', (p) => p.lastMessage.clientId === m.clientId);
    assert.equal(own.unreadCount, 0);
  });

});
