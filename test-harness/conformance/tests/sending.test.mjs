// PROTOCOL.md §5 (without the rate limit, see ratelimit.test.mjs): body rules, storage
// exactly as sent, membership, seq, idempotency, order of effects.

import { describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  CFG, spec, uuid, call, callTraced, assertOk, assertErr, assertMessage, waitFor, waitForEntry,
  expectNo, send, joinRoom, http, received, mark, show, disconnect, sleep,
} from './helpers.mjs';

async function pair(c) {
  const [a, b] = [c.user('a'), c.user('b')];
  const chat = await c.group(a, [b]);
  return { a, b, chat };
}

/** Sends `body` and returns what a joined receiver, messages:sync and HTTP history saw. */
async function roundtrip(c, body, extra = {}) {
  const { a, b, chat } = await pair(c);
  const sb = await c.connect(b, { autoJoin: true });
  const sa = await c.connect(a);
  const m = await send(sa, chat.id, body, extra);
  const live = await waitFor(sb, 'message:new', (p) => p.clientId === m.clientId);
  const synced = assertOk(await call(sb, 'messages:sync', { chatId: chat.id, afterSeq: 0 })).messages[0];
  const res = await http('GET', `/api/v1/chats/${chat.id}/messages`, { token: b.token });
  assert.equal(res.status, 200, res.text);
  return { m, live, synced, history: res.body.messages[0] };
}

const emoji = '\u{1F600}'; // one scalar value, two UTF-16 code units, four UTF-8 bytes

describe('§5 body length (Unicode scalar values)', () => {
  spec('a body of 8000 characters is accepted', async (c) => {
    const { live } = await roundtrip(c, 'a'.repeat(8000));
    assert.equal(live.body.length, 8000);
  });

  spec('a body of 8000 emoji (16000 UTF-16 units) is accepted', async (c) => {
    const body = emoji.repeat(8000);
    const { live, synced } = await roundtrip(c, body);
    assert.equal(live.body, body);
    assert.equal(synced.body, body);
  }, { skip: CFG.maxPayloadBytes < 33000 ? 'MAX_PAYLOAD_BYTES too small for 32 kB of emoji' : undefined });

  spec('7999 ASCII characters and one emoji (8001 UTF-16 units) are accepted', async (c) => {
    const body = `${'a'.repeat(7999)}${emoji}`;
    const { live } = await roundtrip(c, body);
    assert.equal(live.body, body);
  });

  spec('a body of 8001 characters is VALIDATION_ERROR', async (c) => {
    const { a, chat } = await pair(c);
    const s = await c.connect(a);
    assertErr(await call(s, 'message:send', { chatId: chat.id, body: 'a'.repeat(8001), clientId: uuid() }), 'VALIDATION_ERROR');
  });

  spec('a body of 8001 emoji is VALIDATION_ERROR', async (c) => {
    const { a, chat } = await pair(c);
    const s = await c.connect(a);
    assertErr(await call(s, 'message:send', { chatId: chat.id, body: emoji.repeat(8001), clientId: uuid() }), 'VALIDATION_ERROR');
  }, { skip: CFG.maxPayloadBytes < 33000 ? 'MAX_PAYLOAD_BYTES too small for 32 kB of emoji' : undefined });

  spec('an empty body is VALIDATION_ERROR', async (c) => {
    const { a, chat } = await pair(c);
    const s = await c.connect(a);
    assertErr(await call(s, 'message:send', { chatId: chat.id, body: '', clientId: uuid() }), 'VALIDATION_ERROR');
  });

  spec('a body of one character is accepted', async (c) => {
    const { live } = await roundtrip(c, 'x');
    assert.equal(live.body, 'x');
  });

  for (const [label, body] of [
    ['spaces', '     '],
    ['tabs and newlines', '\t\n\r\n\t'],
    ['Unicode White_Space (NBSP, ideographic space, line separator, en quad)', '\u00a0\u3000\u2028\u2000 '],
  ]) {
    spec(`a body of only whitespace (${label}) is VALIDATION_ERROR`, async (c) => {
      const { a, b, chat } = await pair(c);
      const sb = await c.connect(b, { autoJoin: true });
      const s = await c.connect(a);
      const clientId = uuid();
      assertErr(await call(s, 'message:send', { chatId: chat.id, body, clientId }), 'VALIDATION_ERROR');
      await expectNo(sb, 'message:new', CFG.quietMs, (p) => p.clientId === clientId);
    });
  }

  spec('a body with a zero-width space (not White_Space) is accepted', async (c) => {
    const { live } = await roundtrip(c, '\u200b');
    assert.equal(live.body, '\u200b');
  });
});

describe('§5 stored exactly as sent', () => {
  const tricky = '  leading and trailing spaces  \n\tnew line\r\nCRLF 🎉 e\u0301 (decomposed) "quotes" \\ </script> \u202e';
  spec('the body is stored and delivered exactly as sent (spaces, newlines, emoji, no normalisation)', async (c) => {
    const { m, live, synced, history } = await roundtrip(c, tricky);
    assert.equal(live.body, tricky, 'message:new body');
    assert.equal(synced.body, tricky, 'messages:sync body');
    assert.equal(history.body, tricky, 'HTTP history body');
    assert.equal(live.id, m.data.serverId);
  });

  spec('the same message reads the same everywhere (message:new = sync = HTTP history)', async (c) => {
    const { live, synced, history } = await roundtrip(c, 'consistent');
    assertMessage(live);
    assert.deepEqual(synced, live);
    assert.deepEqual(history, live);
  });
});

describe('§5 kind', () => {
  spec('kind "image" with an https URL body is accepted and delivered as kind "image"', async (c) => {
    const url = 'https://cdn.example.com/pics/cat.png?size=large';
    const { live, synced } = await roundtrip(c, url, { kind: 'image' });
    assert.equal(live.kind, 'image');
    assert.equal(live.body, url);
    assert.equal(synced.kind, 'image');
  });

  spec('kind "image" with a body that is not a URL is VALIDATION_ERROR', async (c) => {
    const { a, chat } = await pair(c);
    const s = await c.connect(a);
    assertErr(await call(s, 'message:send', { chatId: chat.id, body: 'just a caption', clientId: uuid(), kind: 'image' }), 'VALIDATION_ERROR');
  });
});

describe('§5 membership', () => {
  spec('the sender need not join the room to send', async (c) => {
    const { a, b, chat } = await pair(c);
    const sb = await c.connect(b, { autoJoin: true });
    const sa = await c.connect(a);
    const m = await send(sa, chat.id, 'not joined');
    await waitFor(sb, 'message:new', (p) => p.clientId === m.clientId);
    await expectNo(sa, 'message:new', CFG.quietMs, (p) => p.clientId === m.clientId);
  });
});

describe('§5 seq', () => {
  spec('seq starts at 1 and counts up per chat', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const g1 = await c.group(a, [b]);
    const g2 = await c.group(a, [b]);
    const s = await c.connect(a);
    assert.equal((await send(s, g1.id)).data.seq, 1);
    assert.equal((await send(s, g1.id)).data.seq, 2);
    assert.equal((await send(s, g2.id)).data.seq, 1, 'another chat has its own seq');
    assert.equal((await send(s, g1.id)).data.seq, 3);
  });

  spec('seq has no gaps and no repeats under concurrent senders; every receiver sees it in order', async (c) => {
    const per = Math.max(1, Math.min(5, CFG.rateMessages));
    const users = c.users(4, 'conc');
    const [owner, ...rest] = users;
    const chat = await c.group(owner, rest);
    const sockets = [];
    for (const u of users) sockets.push(await c.connect(u, { autoJoin: true }));
    const total = users.length * per;
    const acks = await Promise.all(
      sockets.flatMap((s, i) =>
        Array.from({ length: per }, (_, k) => call(s, 'message:send', { chatId: chat.id, body: `u${i} m${k}`, clientId: uuid() })),
      ),
    );
    const seqs = acks.map((a) => assertOk(a).seq).sort((x, y) => x - y);
    assert.deepEqual(seqs, Array.from({ length: total }, (_, i) => i + 1), `acked seqs: ${show(seqs)}`);
    for (const s of sockets) {
      await waitFor(s, 'message:new', (p) => p.chatId === chat.id && p.seq === total);
      for (let i = 1; i <= total; i++) await waitFor(s, 'message:new', (p) => p.chatId === chat.id && p.seq === i);
      const seen = received(s, 'message:new', (p) => p.chatId === chat.id).map((p) => p.seq);
      assert.deepEqual(seen, Array.from({ length: total }, (_, i) => i + 1), `a receiver saw seqs in this order: ${show(seen)}`);
    }
    const synced = assertOk(await call(sockets[0], 'messages:sync', { chatId: chat.id, afterSeq: 0, limit: 200 }));
    assert.deepEqual(synced.messages.map((m) => m.seq), Array.from({ length: total }, (_, i) => i + 1));
  });
});

describe('§5 idempotency', () => {
  spec('a retry with the same clientId acks the same serverId and seq and broadcasts nothing', async (c) => {
    const { a, b, chat } = await pair(c);
    const sb = await c.connect(b, { autoJoin: true });
    const sa = await c.connect(a);
    const clientId = uuid();
    const payload = { chatId: chat.id, body: 'once', clientId };
    const first = assertOk(await call(sa, 'message:send', payload));
    await waitFor(sb, 'message:new', (p) => p.clientId === clientId);
    await waitFor(sb, 'inbox:update', (p) => p.lastMessage.clientId === clientId);
    const since = mark(sb);
    const again = assertOk(await call(sa, 'message:send', payload));
    assert.deepEqual(again, first, 'the retry acks exactly what the first send acked');
    await expectNo(sb, 'message:new', CFG.quietMs, () => true, { since });
    assert.equal(received(sb, 'inbox:update', () => true, since).length, 0, 'no inbox:update for a retry');
    const synced = assertOk(await call(sa, 'messages:sync', { chatId: chat.id, afterSeq: 0 }));
    assert.equal(synced.messages.length, 1, 'stored once');
  });

  spec('a retry from another device of the same user acks the same message', async (c) => {
    const { a, b, chat } = await pair(c);
    const sb = await c.connect(b, { autoJoin: true });
    const sa1 = await c.connect(a);
    const sa2 = await c.connect(a);
    const payload = { chatId: chat.id, body: 'two devices', clientId: uuid() };
    const first = assertOk(await call(sa1, 'message:send', payload));
    await waitFor(sb, 'message:new', (p) => p.clientId === payload.clientId);
    const since = mark(sb);
    const again = assertOk(await call(sa2, 'message:send', payload));
    assert.equal(again.serverId, first.serverId);
    assert.equal(again.seq, first.seq);
    await expectNo(sb, 'message:new', CFG.quietMs, () => true, { since });
  });

  spec('a retry after a reconnect acks the same message', async (c) => {
    const { a, b, chat } = await pair(c);
    const sb = await c.connect(b, { autoJoin: true });
    const sa = await c.connect(a);
    const payload = { chatId: chat.id, body: 'reconnect', clientId: uuid() };
    const first = assertOk(await call(sa, 'message:send', payload));
    await waitFor(sb, 'message:new', (p) => p.clientId === payload.clientId);
    disconnect(sa);
    const since = mark(sb);
    const sa2 = await c.connect(a);
    const again = assertOk(await call(sa2, 'message:send', payload));
    assert.equal(again.serverId, first.serverId);
    assert.equal(again.seq, first.seq);
    assert.equal(again.createdAt, first.createdAt);
    await expectNo(sb, 'message:new', CFG.quietMs, (p) => p.clientId === payload.clientId, { since });
  });

  spec('a retry after the sender left the group still acks the same message', async (c) => {
    const [a, b, d] = [c.user('a'), c.user('b'), c.user('d')];
    const chat = await c.group(b, [a, d]);
    const sb = await c.connect(b, { autoJoin: true });
    const sa = await c.connect(a);
    const payload = { chatId: chat.id, body: 'then I left', clientId: uuid() };
    const first = assertOk(await call(sa, 'message:send', payload));
    await waitFor(sb, 'message:new', (p) => p.clientId === payload.clientId);
    const res = await http('DELETE', `/api/v1/chats/${chat.id}/members/${a.id}`, { token: a.token });
    assert.equal(res.status, 200, res.text);
    const since = mark(sb);
    const again = assertOk(await call(sa, 'message:send', payload));
    assert.equal(again.serverId, first.serverId);
    assert.equal(again.seq, first.seq);
    await expectNo(sb, 'message:new', CFG.quietMs, () => true, { since });
    // A new message from the ex-member is refused.
    assertErr(await call(sa, 'message:send', { ...payload, clientId: uuid() }), 'FORBIDDEN');
  });

  spec('the same clientId with a different body is VALIDATION_ERROR', async (c) => {
    const { a, b, chat } = await pair(c);
    const sb = await c.connect(b, { autoJoin: true });
    const sa = await c.connect(a);
    const clientId = uuid();
    assertOk(await call(sa, 'message:send', { chatId: chat.id, body: 'original', clientId }));
    assertErr(await call(sa, 'message:send', { chatId: chat.id, body: 'edited', clientId }), 'VALIDATION_ERROR');
    await sleep(CFG.quietMs);
    assert.deepEqual(received(sb, 'message:new', (p) => p.clientId === clientId).map((p) => p.body), ['original']);
  });

  spec('the same clientId in a different chat is VALIDATION_ERROR', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const g1 = await c.group(a, [b]);
    const g2 = await c.group(a, [b]);
    const sa = await c.connect(a);
    const clientId = uuid();
    assertOk(await call(sa, 'message:send', { chatId: g1.id, body: 'same', clientId }));
    assertErr(await call(sa, 'message:send', { chatId: g2.id, body: 'same', clientId }), 'VALIDATION_ERROR');
    const synced = assertOk(await call(sa, 'messages:sync', { chatId: g2.id, afterSeq: 0 }));
    assert.equal(synced.messages.length, 0);
  });

  spec('the same clientId used by another user is a different message', async (c) => {
    const { a, b, chat } = await pair(c);
    const sa = await c.connect(a);
    const sb = await c.connect(b);
    const clientId = uuid();
    const mine = assertOk(await call(sa, 'message:send', { chatId: chat.id, body: 'same id', clientId }));
    const theirs = assertOk(await call(sb, 'message:send', { chatId: chat.id, body: 'same id', clientId }));
    assert.notEqual(theirs.serverId, mine.serverId);
    assert.equal(theirs.seq, mine.seq + 1);
  });

  spec('concurrent duplicates of one clientId store one message', async (c) => {
    const { a, b, chat } = await pair(c);
    const sb = await c.connect(b, { autoJoin: true });
    const sa1 = await c.connect(a);
    const sa2 = await c.connect(a);
    const payload = { chatId: chat.id, body: 'racing', clientId: uuid() };
    const acks = await Promise.all([
      call(sa1, 'message:send', payload),
      call(sa2, 'message:send', payload),
      call(sa1, 'message:send', payload),
    ]);
    const datas = acks.map((x) => assertOk(x));
    assert.equal(new Set(datas.map((d) => d.serverId)).size, 1, `one serverId: ${show(datas)}`);
    assert.equal(new Set(datas.map((d) => d.seq)).size, 1);
    await sleep(CFG.quietMs);
    assert.equal(received(sb, 'message:new', (p) => p.clientId === payload.clientId).length, 1);
  });
});

describe('§5 order of effects', () => {
  spec('on the sender\'s joined socket: message:new, then inbox:update, then the ack', async (c) => {
    const { a, chat } = await pair(c);
    const sa = await c.connect(a);
    await joinRoom(sa, chat.id);
    const clientId = uuid();
    const { ack, at } = await callTraced(sa, 'message:send', { chatId: chat.id, body: 'ordered', clientId });
    assertOk(ack);
    const news = await waitForEntry(sa, 'message:new', (p) => p.clientId === clientId);
    const inbox = await waitForEntry(sa, 'inbox:update', (p) => p.lastMessage.clientId === clientId);
    assert.ok(news.index < inbox.index, 'message:new must come before inbox:update');
    assert.ok(inbox.index < at, `inbox:update (event #${inbox.index}) must come before the ack (after event #${at - 1})`);
  });

  spec('a member in the room gets message:new before inbox:update', async (c) => {
    const { a, b, chat } = await pair(c);
    const sb = await c.connect(b, { autoJoin: true });
    const sa = await c.connect(a);
    const m = await send(sa, chat.id);
    const news = await waitForEntry(sb, 'message:new', (p) => p.clientId === m.clientId);
    const inbox = await waitForEntry(sb, 'inbox:update', (p) => p.lastMessage.clientId === m.clientId);
    assert.ok(news.index < inbox.index);
  });

  spec('an acked message is immediately readable (ack after commit)', async (c) => {
    const { a, b, chat } = await pair(c);
    const sa = await c.connect(a);
    const m = await send(sa, chat.id, 'durable');
    const res = await http('GET', `/api/v1/chats/${chat.id}/messages?afterSeq=0`, { token: b.token });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body.messages.map((x) => x.id), [m.data.serverId]);
  });
});
