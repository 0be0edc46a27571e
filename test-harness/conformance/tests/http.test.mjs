// PROTOCOL.md §9: the HTTP API.

import { describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  CFG, spec, uuid, userId, http, call, assertOk, assertErr, assertHttpErr, assertChat, assertMessage,
  assertKeys, assertSameSet, waitFor, expectNo, send, joinRoom, listChats, chatEntry, seedChat,
  signJwt, nowSec, sleep, show, received,
} from './helpers.mjs';

const seqs = (res) => res.body.messages.map((m) => m.seq);
const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('§9 authentication', () => {
  const bad = [
    ['no Authorization header', () => ({})],
    ['a garbage bearer token', () => ({ headers: { authorization: 'Bearer garbage' } })],
    ['an expired token', () => ({ token: signJwt({ sub: userId('x'), exp: nowSec() - 120 }) })],
    ['a token signed with another secret', () => ({ token: signJwt({ sub: userId('x'), exp: nowSec() + 600 }, { secret: 'nope' }) })],
    ['alg none', () => ({ token: signJwt({ sub: userId('x'), exp: nowSec() + 600 }, { alg: 'none' }) })],
    ['a non-Bearer scheme', () => ({ headers: { authorization: `Basic ${Buffer.from('u:p').toString('base64')}` } })],
  ];
  for (const [label, make] of bad) {
    spec(`GET /api/v1/chats with ${label} is 401 UNAUTHORIZED`, async () => {
      const res = await http('GET', '/api/v1/chats', make());
      assertHttpErr(res, 401, 'UNAUTHORIZED');
    });
  }

  spec('POST /api/v1/chats without a token is 401 UNAUTHORIZED', async () => {
    const res = await http('POST', '/api/v1/chats', { body: { kind: 'dm', memberIds: [userId('x')] } });
    assertHttpErr(res, 401, 'UNAUTHORIZED');
  });

  spec('GET messages without a token is 401 UNAUTHORIZED', async () => {
    const res = await http('GET', `/api/v1/chats/${uuid()}/messages`);
    assertHttpErr(res, 401, 'UNAUTHORIZED');
  });

  spec('the lowercase "bearer" scheme is accepted', async (c) => {
    const a = c.user('a');
    const res = await http('GET', '/api/v1/chats', { headers: { authorization: `bearer ${a.token}` } });
    assert.equal(res.status, 200, res.text);
  });

  spec('JSON error bodies carry a fresh correlationId each time', async () => {
    const one = await http('GET', '/api/v1/chats');
    const two = await http('GET', '/api/v1/chats');
    assertHttpErr(one, 401, 'UNAUTHORIZED');
    assertHttpErr(two, 401, 'UNAUTHORIZED');
    assert.notEqual(one.body.correlationId, two.body.correlationId);
  });
});

describe('§9 GET /api/v1/chats', () => {
  spec('a new user has { chats: [] }', async (c) => {
    const a = c.user('a');
    const res = await http('GET', '/api/v1/chats', { token: a.token });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body, { chats: [] });
    assert.match(res.headers.get('content-type') ?? '', /application\/json/);
  });

  spec('entries are { chat, lastMessage, unreadCount }; lastMessage is null in an empty chat', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const chat = await c.group(a, [b], 'empty');
    const chats = await listChats(a);
    assert.equal(chats.length, 1);
    assertKeys(chats[0], ['chat', 'lastMessage', 'unreadCount'], 'entry');
    assertChat(chats[0].chat, { id: chat.id, title: 'empty', kind: 'group' });
    assert.equal(chats[0].lastMessage, null);
    assert.equal(chats[0].unreadCount, 0);
  });

  spec('lastMessage is the newest message and unreadCount the caller\'s own', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const chat = await c.group(a, [b]);
    const sa = await c.connect(a);
    await send(sa, chat.id, 'first');
    const m = await send(sa, chat.id, 'second');
    const eb = await chatEntry(b, chat.id);
    assertMessage(eb.lastMessage, { id: m.data.serverId, body: 'second', seq: 2, senderId: a.id });
    assert.equal(eb.unreadCount, 2);
    assert.equal((await chatEntry(a, chat.id)).unreadCount, 0);
  });

  spec('only the caller\'s chats are listed', async (c) => {
    const [a, b, x] = [c.user('a'), c.user('b'), c.user('x')];
    const mine = await c.group(a, [b]);
    await c.group(x, [b]);
    const chats = await listChats(a);
    assert.deepEqual(chats.map((e) => e.chat.id), [mine.id]);
  });

  spec('chats are ordered by newest activity first (last message time, else creation time)', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const g1 = await c.group(a, [b], 'oldest');
    await sleep(20);
    const g2 = await c.group(a, [b], 'middle');
    await sleep(20);
    const g3 = await c.group(a, [b], 'newest');
    assert.deepEqual((await listChats(a)).map((e) => e.chat.id), [g3.id, g2.id, g1.id], 'by creation time');
    await sleep(20);
    const sa = await c.connect(a);
    await send(sa, g1.id, 'bump');
    assert.deepEqual((await listChats(a)).map((e) => e.chat.id), [g1.id, g3.id, g2.id], 'a message moves a chat first');
    await sleep(20);
    await send(sa, g2.id, 'bump');
    assert.deepEqual((await listChats(b)).map((e) => e.chat.id), [g2.id, g1.id, g3.id], 'same order for every member');
  });
});

describe('§9 POST /api/v1/chats', () => {
  spec('a new DM is 201 { chat }', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const res = await http('POST', '/api/v1/chats', { token: a.token, body: { kind: 'dm', memberIds: [b.id] } });
    assert.equal(res.status, 201, res.text);
    assertKeys(res.body, ['chat'], 'body');
    assertChat(res.body.chat, { kind: 'dm', title: null, createdBy: a.id, memberIds: [a.id, b.id] });
  });

  spec('the same DM again is 200 with the same chat (from either side)', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const first = await http('POST', '/api/v1/chats', { token: a.token, body: { kind: 'dm', memberIds: [b.id] } });
    assert.equal(first.status, 201, first.text);
    const again = await http('POST', '/api/v1/chats', { token: a.token, body: { kind: 'dm', memberIds: [b.id] } });
    assert.equal(again.status, 200, again.text);
    assert.equal(again.body.chat.id, first.body.chat.id);
    const other = await http('POST', '/api/v1/chats', { token: b.token, body: { kind: 'dm', memberIds: [a.id] } });
    assert.equal(other.status, 200, other.text);
    assert.equal(other.body.chat.id, first.body.chat.id);
  });

  spec('a DM made over the socket is found again over HTTP (200, same chat)', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const s = await c.connect(a);
    const chat = assertOk(await call(s, 'chat:create', { kind: 'dm', memberIds: [b.id] })).chat;
    const res = await http('POST', '/api/v1/chats', { token: b.token, body: { kind: 'dm', memberIds: [a.id] } });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.chat.id, chat.id);
  });

  spec('a group is 201 { chat } with the creator as a member', async (c) => {
    const [a, b, d] = [c.user('a'), c.user('b'), c.user('d')];
    const res = await http('POST', '/api/v1/chats', { token: a.token, body: { kind: 'group', memberIds: [b.id, d.id], title: 'G' } });
    assert.equal(res.status, 201, res.text);
    assertChat(res.body.chat, { kind: 'group', title: 'G', createdBy: a.id, memberIds: [a.id, b.id, d.id] });
    assert.equal(res.body.chat.createdAt, res.body.chat.updatedAt);
  });

  for (const [label, body] of [
    ['no kind', { memberIds: ['x'] }],
    ['an unknown kind', { kind: 'room', memberIds: ['x'], title: 't' }],
    ['memberIds not an array', { kind: 'dm', memberIds: 'x' }],
    ['a DM with two others', { kind: 'dm', memberIds: ['x', 'y'] }],
    ['a group with a numeric title', { kind: 'group', memberIds: ['x'], title: 7 }],
    ['a JSON array body', ['dm']],
  ]) {
    spec(`POST /api/v1/chats with ${label} is 400 VALIDATION_ERROR`, async (c) => {
      const a = c.user('a');
      const res = await http('POST', '/api/v1/chats', { token: a.token, body });
      assertHttpErr(res, 400, 'VALIDATION_ERROR');
    });
  }

  spec('POST /api/v1/chats with a body that is not JSON is 400 VALIDATION_ERROR', async (c) => {
    const a = c.user('a');
    const res = await http('POST', '/api/v1/chats', { token: a.token, raw: '{"kind": "dm", memberIds: [' });
    assertHttpErr(res, 400, 'VALIDATION_ERROR');
  });
});

describe('§9 GET /api/v1/chats/:chatId/messages', () => {
  const get = (user, chatId, query = '') => http('GET', `/api/v1/chats/${chatId}/messages${query}`, { token: user.token });

  spec('neither afterSeq nor beforeSeq: the newest messages, ascending', async (c) => {
    const { chat, owner } = await seedChat(c, 5);
    const all = await get(owner, chat.id);
    assert.equal(all.status, 200, all.text);
    assertKeys(all.body, ['messages', 'hasMore'], 'body');
    assert.deepEqual(seqs(all), [1, 2, 3, 4, 5]);
    assert.equal(all.body.hasMore, false);
    for (const m of all.body.messages) assertMessage(m, { chatId: chat.id });
    const page = await get(owner, chat.id, '?limit=2');
    assert.deepEqual(seqs(page), [4, 5]);
    assert.equal(page.body.hasMore, true, 'older messages remain');
  });

  spec('afterSeq: the oldest `limit` messages after it, hasMore when newer remain', async (c) => {
    const { chat, owner } = await seedChat(c, 5);
    const p1 = await get(owner, chat.id, '?afterSeq=1&limit=2');
    assert.equal(p1.status, 200, p1.text);
    assert.deepEqual(seqs(p1), [2, 3]);
    assert.equal(p1.body.hasMore, true);
    const p2 = await get(owner, chat.id, '?afterSeq=3&limit=2');
    assert.deepEqual(seqs(p2), [4, 5]);
    assert.equal(p2.body.hasMore, false);
    const p3 = await get(owner, chat.id, '?afterSeq=5');
    assert.deepEqual(seqs(p3), []);
    assert.equal(p3.body.hasMore, false);
    const p0 = await get(owner, chat.id, '?afterSeq=0');
    assert.deepEqual(seqs(p0), [1, 2, 3, 4, 5]);
  });

  spec('beforeSeq: the newest `limit` messages before it, ascending, hasMore when older remain', async (c) => {
    const { chat, owner } = await seedChat(c, 5);
    const p1 = await get(owner, chat.id, '?beforeSeq=5&limit=2');
    assert.equal(p1.status, 200, p1.text);
    assert.deepEqual(seqs(p1), [3, 4]);
    assert.equal(p1.body.hasMore, true);
    const p2 = await get(owner, chat.id, '?beforeSeq=3&limit=2');
    assert.deepEqual(seqs(p2), [1, 2]);
    assert.equal(p2.body.hasMore, false);
    const p3 = await get(owner, chat.id, '?beforeSeq=1');
    assert.deepEqual(seqs(p3), []);
    assert.equal(p3.body.hasMore, false);
    const p4 = await get(owner, chat.id, '?beforeSeq=100');
    assert.deepEqual(seqs(p4), [1, 2, 3, 4, 5]);
    assert.equal(p4.body.hasMore, false);
  });

  spec('limit defaults to 50 (newest 50, hasMore) and afterSeq=0 gives the oldest 50', async (c) => {
    const { chat, owner } = await seedChat(c, 53);
    const newest = await get(owner, chat.id);
    assert.deepEqual(seqs(newest), range(4, 53));
    assert.equal(newest.body.hasMore, true);
    const oldest = await get(owner, chat.id, '?afterSeq=0');
    assert.deepEqual(seqs(oldest), range(1, 50));
    assert.equal(oldest.body.hasMore, true);
  });

  spec('limit bounds 1 and 200 are accepted', async (c) => {
    const { chat, owner } = await seedChat(c, 3);
    const one = await get(owner, chat.id, '?limit=1');
    assert.deepEqual(seqs(one), [3]);
    assert.equal(one.body.hasMore, true);
    const max = await get(owner, chat.id, '?limit=200');
    assert.deepEqual(seqs(max), [1, 2, 3]);
  });

  for (const [label, query] of [
    ['both afterSeq and beforeSeq', '?afterSeq=1&beforeSeq=3'],
    ['limit=0', '?limit=0'],
    ['limit=201', '?limit=201'],
    ['limit=abc', '?limit=abc'],
    ['limit=-1', '?limit=-1'],
    ['afterSeq=-1', '?afterSeq=-1'],
    ['afterSeq=x', '?afterSeq=x'],
    ['beforeSeq=1.5', '?beforeSeq=1.5'],
  ]) {
    spec(`${label} is 400 VALIDATION_ERROR`, async (c) => {
      const [a, b] = [c.user('a'), c.user('b')];
      const chat = await c.group(a, [b]);
      assertHttpErr(await get(a, chat.id, query), 400, 'VALIDATION_ERROR');
    });
  }

  spec('a malformed query is VALIDATION_ERROR even for an unknown chat', async (c) => {
    const a = c.user('a');
    assertHttpErr(await get(a, uuid(), '?afterSeq=1&beforeSeq=2'), 400, 'VALIDATION_ERROR');
  });

  spec('a non-member is 403 FORBIDDEN', async (c) => {
    const [a, b, x] = [c.user('a'), c.user('b'), c.user('x')];
    const chat = await c.group(a, [b]);
    assertHttpErr(await get(x, chat.id), 403, 'FORBIDDEN');
  });

  spec('an unknown chat is 404 NOT_FOUND', async (c) => {
    const a = c.user('a');
    assertHttpErr(await get(a, uuid()), 404, 'NOT_FOUND');
  });
});

describe('§9 PATCH /api/v1/chats/:chatId', () => {
  spec('any member may rename a group: { chat }, updatedAt moves, chat:update emitted', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const chat = await c.group(a, [b], 'before');
    const sa = await c.connect(a);
    await sleep(20);
    const res = await http('PATCH', `/api/v1/chats/${chat.id}`, { token: b.token, body: { title: 'after' } });
    assert.equal(res.status, 200, res.text);
    assertKeys(res.body, ['chat'], 'body');
    assertChat(res.body.chat, { id: chat.id, title: 'after', createdBy: a.id, createdAt: chat.createdAt });
    assert.ok(Date.parse(res.body.chat.updatedAt) > Date.parse(chat.updatedAt), `updatedAt ${res.body.chat.updatedAt} must move past ${chat.updatedAt}`);
    const upd = await waitFor(sa, 'chat:update', (p) => p.chat.id === chat.id);
    assert.deepEqual(upd.chat, res.body.chat);
    assert.equal((await chatEntry(a, chat.id)).chat.title, 'after');
  });

  spec('renaming a DM is 400 VALIDATION_ERROR', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const chat = await c.dm(a, b);
    assertHttpErr(await http('PATCH', `/api/v1/chats/${chat.id}`, { token: a.token, body: { title: 'nope' } }), 400, 'VALIDATION_ERROR');
  });

  spec('renaming with a non-string title is 400 VALIDATION_ERROR', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const chat = await c.group(a, [b]);
    assertHttpErr(await http('PATCH', `/api/v1/chats/${chat.id}`, { token: a.token, body: { title: 42 } }), 400, 'VALIDATION_ERROR');
    assertHttpErr(await http('PATCH', `/api/v1/chats/${chat.id}`, { token: a.token, body: {} }), 400, 'VALIDATION_ERROR');
  });

  spec('renaming by a non-member is 403 FORBIDDEN', async (c) => {
    const [a, b, x] = [c.user('a'), c.user('b'), c.user('x')];
    const chat = await c.group(a, [b]);
    assertHttpErr(await http('PATCH', `/api/v1/chats/${chat.id}`, { token: x.token, body: { title: 'hijack' } }), 403, 'FORBIDDEN');
  });

  spec('renaming an unknown chat is 404 NOT_FOUND', async (c) => {
    const a = c.user('a');
    assertHttpErr(await http('PATCH', `/api/v1/chats/${uuid()}`, { token: a.token, body: { title: 't' } }), 404, 'NOT_FOUND');
  });
});

describe('§9 POST /api/v1/chats/:chatId/members', () => {
  spec('any member may add a user: 200 { chat }, chat:update to old and new members', async (c) => {
    const [a, b, n] = [c.user('a'), c.user('b'), c.user('new')];
    const chat = await c.group(a, [b]);
    const sa = await c.connect(a);
    const sn = await c.connect(n);
    const res = await http('POST', `/api/v1/chats/${chat.id}/members`, { token: b.token, body: { userId: n.id } });
    assert.equal(res.status, 200, res.text);
    assertKeys(res.body, ['chat'], 'body');
    assertChat(res.body.chat, { memberIds: [a.id, b.id, n.id] });
    await waitFor(sa, 'chat:update', (p) => p.chat.memberIds.includes(n.id));
    await waitFor(sn, 'chat:update', (p) => p.chat.id === chat.id);
  });

  spec('the added member can then join, send and receive inbox:update', async (c) => {
    const [a, b, n] = [c.user('a'), c.user('b'), c.user('new')];
    const chat = await c.group(a, [b]);
    const sn = await c.connect(n);
    assertErr(await call(sn, 'room:join', { chatId: chat.id }), 'FORBIDDEN');
    const res = await http('POST', `/api/v1/chats/${chat.id}/members`, { token: a.token, body: { userId: n.id } });
    assert.equal(res.status, 200, res.text);
    await joinRoom(sn, chat.id);
    const sa = await c.connect(a);
    const m = await send(sa, chat.id, 'welcome');
    await waitFor(sn, 'message:new', (p) => p.clientId === m.clientId);
    await waitFor(sn, 'inbox:update', (p) => p.lastMessage.clientId === m.clientId);
    await send(sn, chat.id, 'thanks');
  });

  spec('adding someone who is already a member is 200 with the chat unchanged', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const chat = await c.group(a, [b]);
    const res = await http('POST', `/api/v1/chats/${chat.id}/members`, { token: a.token, body: { userId: b.id } });
    assert.equal(res.status, 200, res.text);
    assertSameSet(res.body.chat.memberIds, [a.id, b.id], 'memberIds');
  });

  spec('a non-member cannot add: 403 FORBIDDEN', async (c) => {
    const [a, b, x] = [c.user('a'), c.user('b'), c.user('x')];
    const chat = await c.group(a, [b]);
    assertHttpErr(await http('POST', `/api/v1/chats/${chat.id}/members`, { token: x.token, body: { userId: x.id } }), 403, 'FORBIDDEN');
  });

  spec('adding to a DM is 400 VALIDATION_ERROR', async (c) => {
    const [a, b, d] = [c.user('a'), c.user('b'), c.user('d')];
    const chat = await c.dm(a, b);
    assertHttpErr(await http('POST', `/api/v1/chats/${chat.id}/members`, { token: a.token, body: { userId: d.id } }), 400, 'VALIDATION_ERROR');
  });

  spec('a body without userId is 400 VALIDATION_ERROR', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const chat = await c.group(a, [b]);
    assertHttpErr(await http('POST', `/api/v1/chats/${chat.id}/members`, { token: a.token, body: {} }), 400, 'VALIDATION_ERROR');
    assertHttpErr(await http('POST', `/api/v1/chats/${chat.id}/members`, { token: a.token, body: { userId: 5 } }), 400, 'VALIDATION_ERROR');
  });

  spec('adding to an unknown chat is 404 NOT_FOUND', async (c) => {
    const a = c.user('a');
    assertHttpErr(await http('POST', `/api/v1/chats/${uuid()}/members`, { token: a.token, body: { userId: userId('x') } }), 404, 'NOT_FOUND');
  });
});

describe('§9 DELETE /api/v1/chats/:chatId/members/:userId', () => {
  spec('a member may remove themself: 200 { chat } without them', async (c) => {
    const [a, b, d] = [c.user('a'), c.user('b'), c.user('d')];
    const chat = await c.group(a, [b, d]);
    const res = await http('DELETE', `/api/v1/chats/${chat.id}/members/${b.id}`, { token: b.token });
    assert.equal(res.status, 200, res.text);
    assertKeys(res.body, ['chat'], 'body');
    assertChat(res.body.chat, { memberIds: [a.id, d.id] });
    assert.ok(!(await listChats(b)).some((e) => e.chat.id === chat.id), 'the chat is gone from the leaver\'s list');
  });

  spec('the creator may remove anyone', async (c) => {
    const [a, b, d] = [c.user('a'), c.user('b'), c.user('d')];
    const chat = await c.group(a, [b, d]);
    const res = await http('DELETE', `/api/v1/chats/${chat.id}/members/${d.id}`, { token: a.token });
    assert.equal(res.status, 200, res.text);
    assertSameSet(res.body.chat.memberIds, [a.id, b.id], 'memberIds');
  });

  spec('a member who is not the creator cannot remove others: 403 FORBIDDEN', async (c) => {
    const [a, b, d] = [c.user('a'), c.user('b'), c.user('d')];
    const chat = await c.group(a, [b, d]);
    assertHttpErr(await http('DELETE', `/api/v1/chats/${chat.id}/members/${d.id}`, { token: b.token }), 403, 'FORBIDDEN');
    assertHttpErr(await http('DELETE', `/api/v1/chats/${chat.id}/members/${a.id}`, { token: b.token }), 403, 'FORBIDDEN');
    assertSameSet((await chatEntry(a, chat.id)).chat.memberIds, [a.id, b.id, d.id], 'memberIds unchanged');
  });

  spec('a non-member cannot remove anyone: 403 FORBIDDEN', async (c) => {
    const [a, b, x] = [c.user('a'), c.user('b'), c.user('x')];
    const chat = await c.group(a, [b]);
    assertHttpErr(await http('DELETE', `/api/v1/chats/${chat.id}/members/${b.id}`, { token: x.token }), 403, 'FORBIDDEN');
  });

  spec('DM membership never changes: 400 VALIDATION_ERROR', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const chat = await c.dm(a, b);
    assertHttpErr(await http('DELETE', `/api/v1/chats/${chat.id}/members/${a.id}`, { token: a.token }), 400, 'VALIDATION_ERROR');
    assertHttpErr(await http('DELETE', `/api/v1/chats/${chat.id}/members/${b.id}`, { token: a.token }), 400, 'VALIDATION_ERROR');
  });

  spec('the removed member\'s sockets stop getting message:new at once', async (c) => {
    const [a, b, d] = [c.user('a'), c.user('b'), c.user('d')];
    const chat = await c.group(a, [b, d]);
    const sa = await c.connect(a);
    const sb = await c.connect(b, { autoJoin: true });
    const sd = await c.connect(d, { autoJoin: true });
    const sd2 = await c.connect(d);
    await joinRoom(sd2, chat.id);
    const before = await send(sa, chat.id, 'before');
    await waitFor(sd, 'message:new', (p) => p.clientId === before.clientId);
    const res = await http('DELETE', `/api/v1/chats/${chat.id}/members/${d.id}`, { token: a.token });
    assert.equal(res.status, 200, res.text);
    const after = await send(sa, chat.id, 'after');
    await waitFor(sb, 'message:new', (p) => p.clientId === after.clientId);
    await expectNo(sd, 'message:new', CFG.quietMs, (p) => p.clientId === after.clientId);
    await expectNo(sd2, 'message:new', 0, (p) => p.clientId === after.clientId);
    assert.equal(received(sd, 'inbox:update', (p) => p.lastMessage.clientId === after.clientId).length, 0, 'no inbox:update either');
    assertErr(await call(sd, 'room:join', { chatId: chat.id }), 'FORBIDDEN');
    assertErr(await call(sd, 'message:send', { chatId: chat.id, body: 'x', clientId: uuid() }), 'FORBIDDEN');
    assertErr(await call(sd, 'messages:sync', { chatId: chat.id, afterSeq: 0 }), 'FORBIDDEN');
  });

  spec('removal emits chat:update to old and new members', async (c) => {
    const [a, b, d] = [c.user('a'), c.user('b'), c.user('d')];
    const chat = await c.group(a, [b, d]);
    const sa = await c.connect(a);
    const sb = await c.connect(b);
    const sd = await c.connect(d);
    const res = await http('DELETE', `/api/v1/chats/${chat.id}/members/${b.id}`, { token: b.token });
    assert.equal(res.status, 200, res.text);
    for (const s of [sa, sb, sd]) {
      const upd = await waitFor(s, 'chat:update', (p) => p.chat.id === chat.id);
      assertSameSet(upd.chat.memberIds, [a.id, d.id], 'memberIds');
    }
  });

  spec('removing from an unknown chat is 404 NOT_FOUND', async (c) => {
    const a = c.user('a');
    assertHttpErr(await http('DELETE', `/api/v1/chats/${uuid()}/members/${a.id}`, { token: a.token }), 404, 'NOT_FOUND');
  });
});

describe('§9 admin, health, metrics', () => {
  spec('GET /api/v1/admin/sockets is 403 FORBIDDEN for a non-admin', async (c) => {
    const a = c.user('a');
    assertHttpErr(await http('GET', '/api/v1/admin/sockets', { token: a.token }), 403, 'FORBIDDEN');
  });

  spec('GET /api/v1/admin/sockets is 401 without a token', async () => {
    assertHttpErr(await http('GET', '/api/v1/admin/sockets'), 401, 'UNAUTHORIZED');
  });

  spec('GET /api/v1/admin/sockets for role "admin" lists connections, users and rooms', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const chat = await c.group(a, [b]);
    await c.connect(a, { autoJoin: true });
    await c.connect(a);
    const admin = c.user('admin', { role: 'admin' });
    const res = await http('GET', '/api/v1/admin/sockets', { token: admin.token });
    assert.equal(res.status, 200, res.text.slice(0, 400));
    assertKeys(res.body, ['connections', 'users', 'rooms'], 'admin body');
    const count = (v) => (Array.isArray(v) ? v.length : v);
    assert.ok(Number.isInteger(count(res.body.connections)) && count(res.body.connections) >= 2, `connections: ${show(res.body.connections)}`);
    assert.ok(Number.isInteger(count(res.body.users)) && count(res.body.users) >= 1, `users: ${show(res.body.users)}`);
    assert.ok(Array.isArray(res.body.rooms), 'rooms is an array');
    const userRoom = res.body.rooms.find((r) => r.room === `user:${a.id}`);
    assert.ok(userRoom, `room user:${a.id} not listed`);
    assertKeys(userRoom, ['room', 'sockets', 'userIds'], 'room entry');
    assert.equal(count(userRoom.sockets), 2, `user room sockets: ${show(userRoom.sockets)}`);
    assert.deepEqual(userRoom.userIds, [a.id]);
    const chatRoom = res.body.rooms.find((r) => r.room === `chat:${chat.id}`);
    assert.ok(chatRoom, `room chat:${chat.id} not listed`);
    assert.equal(count(chatRoom.sockets), 1);
    assert.deepEqual(chatRoom.userIds, [a.id]);
  });

  spec('GET /healthz is 200', async () => {
    const res = await http('GET', '/healthz');
    assert.equal(res.status, 200, res.text);
  });

  spec('GET /metrics is Prometheus text', async () => {
    const res = await http('GET', '/metrics');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
    assert.match(res.text, /^# TYPE \S+ (counter|gauge|histogram|summary|untyped)$/m);
    assert.match(res.text, /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? (-?[0-9.eE+-]+|NaN|[+-]Inf)/m);
  });
});
