// PROTOCOL.md §2: acknowledgement shapes, VALIDATION_ERROR for every malformed payload
// (checked before any lookup), events without callbacks, typing:* never answering, and
// garbage never hurting the socket, the server or other connections.

import { describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  CFG, spec, uuid, call, assertOk, assertErr, waitFor, expectNo, expectNoAck, send, show, userId,
  assertTimeNow, sleep, listChats,
} from './helpers.mjs';

describe('§2 ack shapes', () => {
  spec('success ack is { ok: true, data }', async (c) => {
    const a = c.user('a');
    const s = await c.connect(a);
    const ack = await call(s, 'presence:ping', {});
    assert.deepEqual(Object.keys(ack).sort(), ['data', 'ok'], show(ack));
    assert.equal(ack.ok, true);
    assertTimeNow(ack.data.serverTime, 'serverTime');
  });

  spec('failure ack is { ok: false, error, message, correlationId (uuid) }', async (c) => {
    const a = c.user('a');
    const s = await c.connect(a);
    const ack = await call(s, 'room:join', { chatId: uuid() });
    assertErr(ack, 'NOT_FOUND');
    assert.ok(ack.message.length > 0, 'message must not be empty');
  });

  spec('every failure ack gets its own correlationId', async (c) => {
    const a = c.user('a');
    const s = await c.connect(a);
    const one = await call(s, 'room:join', { chatId: uuid() });
    const two = await call(s, 'room:join', { chatId: uuid() });
    assertErr(one, 'NOT_FOUND');
    assertErr(two, 'NOT_FOUND');
    assert.notEqual(one.correlationId, two.correlationId);
  });
});

// Malformed payloads of every acked event. `chat` is an unknown chat id: the shape is
// validated before anything is looked up, so these are VALIDATION_ERROR and not NOT_FOUND.
const longId = 'x'.repeat(10000);
const malformed = {
  'room:join': [
    ['a string payload', () => 'chat'],
    ['a number payload', () => 42],
    ['a null payload', () => null],
    ['an array payload', (chat) => [{ chatId: chat }]],
    ['no chatId', () => ({})],
    ['a numeric chatId', () => ({ chatId: 42 })],
    ['an empty chatId', () => ({ chatId: '' })],
    ['an object chatId', (chat) => ({ chatId: { id: chat } })],
    ['an array chatId', (chat) => ({ chatId: [chat] })],
    ['a 10000-char chatId', () => ({ chatId: longId })],
  ],
  'room:leave': [
    ['a string payload', () => 'chat'],
    ['no chatId', () => ({})],
    ['a numeric chatId', () => ({ chatId: 7 })],
    ['an empty chatId', () => ({ chatId: '' })],
    ['a boolean chatId', () => ({ chatId: true })],
  ],
  'message:send': [
    ['a string payload', () => 'hello'],
    ['a number payload', () => 1],
    ['a null payload', () => null],
    ['an array payload', (chat) => [chat, 'hi', uuid()]],
    ['no chatId', () => ({ body: 'hi', clientId: uuid() })],
    ['a numeric chatId', () => ({ chatId: 1, body: 'hi', clientId: uuid() })],
    ['an empty chatId', () => ({ chatId: '', body: 'hi', clientId: uuid() })],
    ['no body', (chat) => ({ chatId: chat, clientId: uuid() })],
    ['a numeric body', (chat) => ({ chatId: chat, body: 42, clientId: uuid() })],
    ['an object body', (chat) => ({ chatId: chat, body: { text: 'hi' }, clientId: uuid() })],
    ['an empty body', (chat) => ({ chatId: chat, body: '', clientId: uuid() })],
    ['a whitespace-only body', (chat) => ({ chatId: chat, body: ' \t\n ', clientId: uuid() })],
    ['a body of 8001 characters', (chat) => ({ chatId: chat, body: 'a'.repeat(8001), clientId: uuid() })],
    ['no clientId', (chat) => ({ chatId: chat, body: 'hi' })],
    ['a clientId that is not a UUID', (chat) => ({ chatId: chat, body: 'hi', clientId: 'not-a-uuid' })],
    ['a numeric clientId', (chat) => ({ chatId: chat, body: 'hi', clientId: 123 })],
    ['an unknown kind value', (chat) => ({ chatId: chat, body: 'hi', clientId: uuid(), kind: 'video' })],
    ['a numeric kind', (chat) => ({ chatId: chat, body: 'hi', clientId: uuid(), kind: 1 })],
    ['kind image with a body that is not a URL', (chat) => ({ chatId: chat, body: 'a cat', clientId: uuid(), kind: 'image' })],
  ],
  'receipt:read': [
    ['a string payload', () => 'x'],
    ['a null payload', () => null],
    ['no chatId', () => ({ messageId: uuid() })],
    ['no messageId', (chat) => ({ chatId: chat })],
    ['a numeric messageId', (chat) => ({ chatId: chat, messageId: 3 })],
    ['an empty messageId', (chat) => ({ chatId: chat, messageId: '' })],
    ['a numeric chatId', () => ({ chatId: 3, messageId: uuid() })],
  ],
  'presence:ping': [
    ['a string payload', () => 'ping'],
    ['a number payload', () => 5],
    ['an array payload', () => []],
  ],
  'chat:create': [
    ['a string payload', () => 'dm'],
    ['a null payload', () => null],
    ['no kind', () => ({ memberIds: [userId('x')] })],
    ['an unknown kind value', () => ({ kind: 'channel', memberIds: [userId('x')], title: 't' })],
    ['a numeric kind', () => ({ kind: 1, memberIds: [userId('x')] })],
    ['no memberIds', () => ({ kind: 'dm' })],
    ['memberIds that is not an array', () => ({ kind: 'dm', memberIds: userId('x') })],
    ['memberIds with a number', () => ({ kind: 'group', memberIds: [5], title: 't' })],
    ['memberIds with an empty string', () => ({ kind: 'group', memberIds: [''], title: 't' })],
    ['a dm with no other member', () => ({ kind: 'dm', memberIds: [] })],
    ['a dm with two other members', () => ({ kind: 'dm', memberIds: [userId('x'), userId('y')] })],
    ['a group without a title', () => ({ kind: 'group', memberIds: [userId('x')] })],
    ['a group with a numeric title', () => ({ kind: 'group', memberIds: [userId('x')], title: 5 })],
  ],
  'messages:sync': [
    ['a string payload', () => 'sync'],
    ['a null payload', () => null],
    ['no chatId', () => ({ afterSeq: 0 })],
    ['no afterSeq', (chat) => ({ chatId: chat })],
    ['a null afterSeq', (chat) => ({ chatId: chat, afterSeq: null })],
    ['a negative afterSeq', (chat) => ({ chatId: chat, afterSeq: -1 })],
    ['a fractional afterSeq', (chat) => ({ chatId: chat, afterSeq: 1.5 })],
    ['a string afterSeq', (chat) => ({ chatId: chat, afterSeq: '3' })],
    ['limit 0', (chat) => ({ chatId: chat, afterSeq: 0, limit: 0 })],
    ['limit 201', (chat) => ({ chatId: chat, afterSeq: 0, limit: 201 })],
    ['a negative limit', (chat) => ({ chatId: chat, afterSeq: 0, limit: -5 })],
    ['a fractional limit', (chat) => ({ chatId: chat, afterSeq: 0, limit: 2.5 })],
    ['a string limit', (chat) => ({ chatId: chat, afterSeq: 0, limit: '10' })],
  ],
};

describe('§2 malformed payloads are VALIDATION_ERROR (even for an unknown chat)', () => {
  for (const [event, cases] of Object.entries(malformed)) {
    for (const [label, make] of cases) {
      spec(`${event} with ${label} → VALIDATION_ERROR`, async (c) => {
        const a = c.user('v');
        const s = await c.connect(a);
        const payload = make(uuid());
        assertErr(await call(s, event, payload), 'VALIDATION_ERROR', `${event} ${show(payload).slice(0, 80)}`);
        assert.equal(s.connected, true, 'the socket must stay connected');
      });
    }
  }

  spec('a malformed payload for a chat the user belongs to is VALIDATION_ERROR too', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const chat = await c.group(a, [b]);
    const s = await c.connect(a);
    assertErr(await call(s, 'message:send', { chatId: chat.id, body: '', clientId: uuid() }), 'VALIDATION_ERROR');
    assertErr(await call(s, 'messages:sync', { chatId: chat.id, afterSeq: -1 }), 'VALIDATION_ERROR');
  });

  spec('a malformed payload for a chat the user is not in is VALIDATION_ERROR, not FORBIDDEN', async (c) => {
    const [a, b, x] = [c.user('a'), c.user('b'), c.user('x')];
    const chat = await c.group(a, [b]);
    const s = await c.connect(x);
    assertErr(await call(s, 'message:send', { chatId: chat.id, body: 'hi', clientId: 'nope' }), 'VALIDATION_ERROR');
    assertErr(await call(s, 'messages:sync', { chatId: chat.id }), 'VALIDATION_ERROR');
  });
});

describe('§2 events without a callback', () => {
  spec('message:send without a callback is still processed (broadcast to the room)', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const chat = await c.group(a, [b]);
    const sb = await c.connect(b, { autoJoin: true });
    const sa = await c.connect(a);
    const clientId = uuid();
    sa.emit('message:send', { chatId: chat.id, body: 'no ack please', clientId });
    const m = await waitFor(sb, 'message:new', (p) => p.clientId === clientId);
    assert.equal(m.body, 'no ack please');
    assert.equal(m.senderId, a.id);
  });

  spec('a failing event without a callback is only logged: the socket keeps working', async (c) => {
    const a = c.user('a');
    const s = await c.connect(a);
    s.emit('message:send', { chatId: uuid(), body: '', clientId: 'x' });
    s.emit('room:join', { chatId: uuid() });
    s.emit('messages:sync', 'nope');
    await sleep(200);
    assert.equal(s.connected, true);
    assertOk(await call(s, 'presence:ping', {}));
  });

  spec('chat:create without a callback still creates the chat', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const sb = await c.connect(b);
    const sa = await c.connect(a);
    sa.emit('chat:create', { kind: 'group', memberIds: [b.id], title: 'silent' });
    // The chat exists: it shows up in b's GET /api/v1/chats.
    const deadline = Date.now() + CFG.waitMs;
    let found;
    while (!found && Date.now() < deadline) {
      found = (await listChats(b)).find((e) => e.chat.title === 'silent' && e.chat.createdBy === a.id);
      if (!found) await sleep(100);
    }
    assert.ok(found, 'chat:create without a callback did not create the chat');
    assert.equal(sb.connected, true);
  });
});

describe('§2 typing:* never answers', () => {
  for (const event of ['typing:start', 'typing:stop']) {
    spec(`${event} with a callback gets no ack (valid payload)`, async (c) => {
      const [a, b] = [c.user('a'), c.user('b')];
      const chat = await c.group(a, [b]);
      const s = await c.connect(a);
      await call(s, 'room:join', { chatId: chat.id });
      await expectNoAck(s, event, { chatId: chat.id }, Math.max(CFG.quietMs, 1000));
      assert.equal(s.connected, true);
    });

    spec(`${event} with a callback gets no ack (malformed payload)`, async (c) => {
      const a = c.user('a');
      const s = await c.connect(a);
      await expectNoAck(s, event, 'garbage', Math.max(CFG.quietMs, 1000));
      await expectNoAck(s, event, { chatId: 42 }, CFG.quietMs);
      assert.equal(s.connected, true);
      assertOk(await call(s, 'presence:ping', {}));
    });

    spec(`${event} with a callback gets no ack (unknown chat)`, async (c) => {
      const a = c.user('a');
      const s = await c.connect(a);
      await expectNoAck(s, event, { chatId: uuid() }, Math.max(CFG.quietMs, 1000));
      assert.equal(s.connected, true);
    });
  }
});

describe('§2 garbage never crashes anything', () => {
  const deep = (n) => {
    let v = 'x';
    for (let i = 0; i < n; i++) v = [v];
    return v;
  };
  const garbage = [
    ['message:send', 'plain string'],
    ['message:send', 12345],
    ['message:send', true],
    ['message:send', [1, 2, 3]],
    ['message:send', { chatId: { $gt: '' }, body: ['x'], clientId: {} }],
    ['message:send', { chatId: 'x'.repeat(5000), body: 'x', clientId: uuid() }],
    ['message:send', JSON.parse('{"__proto__":{"polluted":true},"constructor":{"prototype":{}}}')],
    ['room:join', deep(64)],
    ['room:join', { chatId: deep(64) }],
    ['receipt:read', { chatId: null, messageId: null }],
    ['messages:sync', { chatId: 'x', afterSeq: 1e308, limit: -1e308 }],
    ['messages:sync', { chatId: 'x', afterSeq: 9007199254740993 }],
    ['chat:create', { kind: 'group', memberIds: 'everyone', title: {} }],
    ['chat:create', { kind: 'dm', memberIds: [null] }],
    ['presence:ping', null],
    ['typing:start', null],
    ['typing:stop', 'x'],
    ['typing:start', { chatId: ['a'] }],
    ['no:such:event', { chatId: 'x' }],
    ['', {}],
  ];

  spec('garbage on every event keeps the socket connected and a later valid call works', async (c) => {
    const a = c.user('a');
    const s = await c.connect(a);
    for (const [event, payload] of garbage) s.emit(event, payload);
    // Several arguments, no arguments, binary.
    s.emit('message:send', { chatId: 'x' }, 'extra', 3);
    s.emit('message:send');
    s.emit('room:join', Buffer.from([1, 2, 3]));
    s.emit('message:send', { chatId: 'x', body: Buffer.from('hi'), clientId: uuid() });
    await sleep(300);
    assert.equal(s.connected, true, `socket dropped: ${s.disconnectReason}`);
    const ack = await call(s, 'presence:ping', {});
    assertOk(ack);
  });

  spec('garbage with callbacks gets failure acks, not silence or a crash', async (c) => {
    const a = c.user('a');
    const s = await c.connect(a);
    for (const [event, payload] of garbage.filter(([e]) => ['message:send', 'room:join', 'receipt:read', 'messages:sync'].includes(e))) {
      const ack = await call(s, event, payload);
      assert.equal(ack?.ok, false, `${event} ${show(payload).slice(0, 80)} must fail, got ${show(ack)}`);
    }
    assert.equal(s.connected, true);
  });

  spec('garbage from one client does not affect another client', async (c) => {
    const [a, b, x] = [c.user('a'), c.user('b'), c.user('x')];
    const chat = await c.group(a, [b]);
    const sb = await c.connect(b, { autoJoin: true });
    const sa = await c.connect(a);
    const sx = await c.connect(x);
    for (const [event, payload] of garbage) sx.emit(event, payload);
    sx.emit('room:join', Buffer.alloc(1024, 7));
    const m = await send(sa, chat.id, 'still alive');
    const got = await waitFor(sb, 'message:new', (p) => p.clientId === m.clientId);
    assert.equal(got.body, 'still alive');
    assert.equal(sb.connected, true);
    assert.equal(sa.connected, true);
  });

  spec('a lone surrogate in a body is VALIDATION_ERROR and the socket survives', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const chat = await c.group(a, [b]);
    const s = await c.connect(a);
    assertErr(await call(s, 'message:send', { chatId: chat.id, body: 'broken \ud800 text', clientId: uuid() }), 'VALIDATION_ERROR');
    assertErr(await call(s, 'message:send', { chatId: chat.id, body: '\udc00', clientId: uuid() }), 'VALIDATION_ERROR');
    assert.equal(s.connected, true);
    await send(s, chat.id, 'fine afterwards');
  });

  spec('presence:ping with no payload at all does not break the socket', async (c) => {
    const a = c.user('a');
    const s = await c.connect(a);
    s.emit('presence:ping');
    await sleep(100);
    assert.equal(s.connected, true);
    assertOk(await call(s, 'presence:ping', {}));
  });

  spec('an unknown event does not break the socket', async (c) => {
    const a = c.user('a');
    const s = await c.connect(a);
    s.emit('definitely:unknown', { x: 1 }, () => {});
    s.emit('definitely:unknown', 1);
    await sleep(100);
    assert.equal(s.connected, true);
    assertOk(await call(s, 'presence:ping', {}));
  });

  spec('a deeply nested payload (200 levels) does not break the socket', async (c) => {
    const a = c.user('a');
    const s = await c.connect(a);
    s.emit('message:send', deep(200));
    s.emit('room:join', { chatId: deep(200) });
    await sleep(200);
    assert.equal(s.connected, true, `socket dropped: ${s.disconnectReason}`);
    assertOk(await call(s, 'presence:ping', {}));
  });
});
