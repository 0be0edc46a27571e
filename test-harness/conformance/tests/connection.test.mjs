// PROTOCOL.md §1: transport, namespace, handshake authentication, user room, autoJoin,
// presence snapshot, socket cap.

import { describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  CFG, spec, signJwt, tokenFor, nowSec, userId, call, assertOk, waitFor, expectNo,
  disconnect, http, send, sleep, show, UUID_RE, hasPolling, assertSameSet,
} from './helpers.mjs';

/** The identity a connected socket acts as: the creator of a DM it creates. */
async function whoAmI(s) {
  const other = userId('probe');
  const data = assertOk(await call(s, 'chat:create', { kind: 'dm', memberIds: [other] }), 'chat:create');
  return data.chat.createdBy;
}

function assertRefused(error, code, label) {
  assert.ok(error, `${label}: expected connect_error ${code}, but the socket connected`);
  assert.equal(error.message, code, `${label}: err.message must be exactly ${code}, got ${show(error.message)}`);
  if (error.data !== undefined && error.data !== null) {
    assert.equal(typeof error.data, 'object', `${label}: err.data must be an object: ${show(error.data)}`);
    assert.deepEqual(Object.keys(error.data).sort(), ['code', 'correlationId', 'message'], `${label}: err.data keys: ${show(error.data)}`);
    assert.equal(error.data.code, code, `${label}: err.data.code`);
    assert.equal(typeof error.data.message, 'string');
    assert.match(String(error.data.correlationId), UUID_RE, `${label}: err.data.correlationId`);
  }
}

describe('§1 handshake: where the token comes from', () => {
  spec('auth.token with a plain JWT connects as its sub', async (c) => {
    const a = c.user('a');
    const s = await c.connect({ token: a.token });
    assert.equal(s.connected, true);
    assert.equal(await whoAmI(s), a.id);
  });

  spec('auth.token with "Bearer <jwt>" connects', async (c) => {
    const a = c.user('a');
    const s = await c.connect({ token: `Bearer ${a.token}` });
    assert.equal(await whoAmI(s), a.id);
  });

  spec('Authorization: Bearer header of the handshake connects', async (c) => {
    const a = c.user('a');
    const s = await c.connect({ headers: { Authorization: `Bearer ${a.token}` } });
    assert.equal(await whoAmI(s), a.id);
  });

  spec('Authorization: Bearer header connects over polling', async (c) => {
    const a = c.user('a');
    const s = await c.connect({ headers: { Authorization: `Bearer ${a.token}` }, transports: ['polling'] });
    assert.equal(await whoAmI(s), a.id);
  }, { skip: hasPolling ? undefined : 'CHAT_TRANSPORTS has no polling' });

  spec('token query parameter connects', async (c) => {
    const a = c.user('a');
    const s = await c.connect({ query: { token: a.token } });
    assert.equal(await whoAmI(s), a.id);
  });

  spec('auth.token wins over the Authorization header and the query parameter', async (c) => {
    const [a, b, d] = [c.user('auth'), c.user('header'), c.user('query')];
    const s = await c.connect({ token: a.token, headers: { Authorization: `Bearer ${b.token}` }, query: { token: d.token } });
    assert.equal(await whoAmI(s), a.id);
  });

  spec('Authorization header wins over the query parameter', async (c) => {
    const [b, d] = [c.user('header'), c.user('query')];
    const s = await c.connect({ headers: { Authorization: `Bearer ${b.token}` }, query: { token: d.token } });
    assert.equal(await whoAmI(s), b.id);
  });

  spec('a bad auth.token is refused even when the header carries a valid token', async (c) => {
    const b = c.user('header');
    const { error } = await c.tryConnect({ token: 'garbage', headers: { Authorization: `Bearer ${b.token}` } });
    assertRefused(error, 'UNAUTHORIZED', 'bad auth.token + good header');
  });
});

describe('§1 handshake: claims', () => {
  spec('id claim is the user id when sub is absent', async (c) => {
    const id = userId('idclaim');
    const s = await c.connect({ token: signJwt({ id, exp: nowSec() + 3600 }) });
    assert.equal(await whoAmI(s), id);
  });

  spec('userId claim is the user id when sub is absent', async (c) => {
    const id = userId('uidclaim');
    const s = await c.connect({ token: signJwt({ userId: id, exp: nowSec() + 3600 }) });
    assert.equal(await whoAmI(s), id);
  });

  spec('sub wins over id and userId', async (c) => {
    const [sub, id, uid] = [userId('sub'), userId('id'), userId('uid')];
    const s = await c.connect({ token: signJwt({ sub, id, userId: uid, exp: nowSec() + 3600 }) });
    assert.equal(await whoAmI(s), sub);
  });

  spec('a sub of 128 characters is accepted', async (c) => {
    const id = `${userId('long')}-`.padEnd(128, 'x');
    assert.equal(id.length, 128);
    const s = await c.connect({ token: tokenFor(id) });
    assert.equal(await whoAmI(s), id);
  });
});

describe('§1 handshake refusals are UNAUTHORIZED', () => {
  const id = () => userId('bad');
  const exp = () => nowSec() + 3600;
  const cases = [
    ['no token at all', () => ({})],
    ['an empty auth object', () => ({ auth: {} })],
    ['a garbage token', () => ({ token: 'not-a-jwt' })],
    ['a malformed three-part token', () => ({ token: 'a.b.c' })],
    ['a token with a non-JSON payload', () => ({ token: `${Buffer.from('{"alg":"HS256"}').toString('base64url')}.${Buffer.from('nope').toString('base64url')}.sig` })],
    ['"Bearer" with nothing after it', () => ({ token: 'Bearer ' })],
    ['an expired token (beyond the 30 s leeway)', () => ({ token: signJwt({ sub: id(), exp: nowSec() - 120 }) })],
    ['a token without exp', () => ({ token: signJwt({ sub: id() }) })],
    ['a token with a non-numeric exp', () => ({ token: signJwt({ sub: id(), exp: 'tomorrow' }) })],
    ['a token not valid before (nbf) far in the future', () => ({ token: signJwt({ sub: id(), exp: exp(), nbf: nowSec() + 600 }) })],
    ['a token signed with another secret', () => ({ token: signJwt({ sub: id(), exp: exp() }, { secret: `${CFG.secret}-wrong` }) })],
    ['a token with a tampered payload', () => {
      const good = tokenFor(id()).split('.');
      const forged = Buffer.from(JSON.stringify({ sub: 'admin', role: 'admin', exp: exp() })).toString('base64url');
      return { token: `${good[0]}.${forged}.${good[2]}` };
    }],
    ['alg "none" without a signature', () => ({ token: signJwt({ sub: id(), exp: exp() }, { alg: 'none' }) })],
    ['alg "none" with an HS256 signature', () => ({ token: signJwt({ sub: id(), exp: exp() }, { alg: 'none', hash: 'sha256' }) })],
    ['alg "HS384" (signed with HS384 and the right secret)', () => ({ token: signJwt({ sub: id(), exp: exp() }, { alg: 'HS384' }) })],
    ['alg "HS512" (signed with HS512 and the right secret)', () => ({ token: signJwt({ sub: id(), exp: exp() }, { alg: 'HS512' }) })],
    ['alg "RS256" with an HMAC signature (key confusion)', () => ({ token: signJwt({ sub: id(), exp: exp() }, { alg: 'RS256', hash: 'sha256' }) })],
    ['a header without alg', () => ({ token: signJwt({ sub: id(), exp: exp() }, { header: { typ: 'JWT' }, hash: 'sha256' }) })],
    ['a token without sub, id or userId', () => ({ token: signJwt({ exp: exp() }) })],
    ['an empty sub', () => ({ token: signJwt({ sub: '', exp: exp() }) })],
    ['a sub of 129 characters', () => ({ token: signJwt({ sub: 'x'.repeat(129), exp: exp() }) })],
    ['a non-string sub', () => ({ token: signJwt({ sub: 12345, exp: exp() }) })],
    ['a non-string auth.token', () => ({ auth: { token: 12345 } })],
    ['an Authorization header without the Bearer scheme', () => ({ headers: { Authorization: `Basic ${Buffer.from('a:b').toString('base64')}` } })],
    ['an Authorization header with a bad token', () => ({ headers: { Authorization: 'Bearer garbage' } })],
    ['a bad token query parameter', () => ({ query: { token: 'garbage' } })],
    ['an expired token as query parameter', () => ({ query: { token: signJwt({ sub: id(), exp: nowSec() - 120 }) } })],
  ];
  for (const [label, make] of cases) {
    spec(`refuses ${label}`, async (c) => {
      const { error } = await c.tryConnect(make());
      assertRefused(error, 'UNAUTHORIZED', label);
    });
  }
});

describe('§1 namespace', () => {
  spec('connecting to another namespace fails with connect_error', async (c) => {
    const a = c.user('a');
    const other = CFG.namespace === '/' ? `/not-the-chat-${userId('ns').slice(3)}` : '/';
    const { error } = await c.tryConnect({ token: a.token, namespace: other });
    assert.ok(error, `connecting to namespace ${other} must fail`);
  });

  spec('connecting to a random unknown namespace fails with connect_error', async (c) => {
    const a = c.user('a');
    const { error } = await c.tryConnect({ token: a.token, namespace: `/nope-${userId('ns').slice(3)}` });
    assert.ok(error, 'an unknown namespace must fail');
  });
});

describe('§1 socket cap per user', () => {
  spec(`the ${CFG.maxSockets + 1}th socket of one user is refused with TOO_MANY_CONNECTIONS`, async (c) => {
    const a = c.user('many');
    for (let i = 0; i < CFG.maxSockets; i++) await c.connect(a);
    const { error } = await c.tryConnect({ token: a.token });
    assertRefused(error, 'TOO_MANY_CONNECTIONS', 'over the cap');
  });

  spec('after one socket disconnects, a new one is allowed again', async (c) => {
    const a = c.user('many');
    const sockets = [];
    for (let i = 0; i < CFG.maxSockets; i++) sockets.push(await c.connect(a));
    const over = await c.tryConnect({ token: a.token });
    assertRefused(over.error, 'TOO_MANY_CONNECTIONS', 'over the cap');
    disconnect(sockets[0]);
    // The server learns of the disconnect asynchronously: retry for a while.
    const deadline = Date.now() + CFG.waitMs;
    let last;
    while (Date.now() < deadline) {
      last = await c.tryConnect({ token: a.token });
      if (!last.error) break;
      assert.equal(last.error.message, 'TOO_MANY_CONNECTIONS');
      await sleep(100);
    }
    assert.equal(last.error, null, `still refused after a disconnect: ${last.error?.message}`);
  });

  spec('the cap is per user: another user still connects', async (c) => {
    const a = c.user('many');
    for (let i = 0; i < CFG.maxSockets; i++) await c.connect(a);
    const b = c.user('other');
    const s = await c.connect(b);
    assert.equal(s.connected, true);
  });
});

describe('§1 rooms joined on connect', () => {
  spec('the socket is in user:<id>: inbox:update arrives without any room:join', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const chat = await c.group(a, [b]);
    const sb = await c.connect(b);
    const sa = await c.connect(a);
    const { clientId } = await send(sa, chat.id, 'to the user room');
    const upd = await waitFor(sb, 'inbox:update', (p) => p.lastMessage.clientId === clientId);
    assert.equal(upd.chatId, chat.id);
  });

  spec('the socket is in user:<id>: chat:update arrives without any room:join', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const chat = await c.group(a, [b], 'before');
    const sb = await c.connect(b);
    const res = await http('PATCH', `/api/v1/chats/${chat.id}`, { token: a.token, body: { title: 'after' } });
    assert.equal(res.status, 200, res.text);
    const upd = await waitFor(sb, 'chat:update', (p) => p.chat.id === chat.id);
    assert.equal(upd.chat.title, 'after');
  });

  spec('without autoJoin the socket is not in chat rooms (no message:new)', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const chat = await c.group(a, [b]);
    const sb = await c.connect(b);
    const sa = await c.connect(a);
    const { clientId } = await send(sa, chat.id);
    await waitFor(sb, 'inbox:update', (p) => p.lastMessage.clientId === clientId);
    await expectNo(sb, 'message:new', CFG.quietMs);
  });

  spec('autoJoin: true joins every chat room of the user (message:new without room:join)', async (c) => {
    const [a, b, d] = [c.user('a'), c.user('b'), c.user('d')];
    const g1 = await c.group(a, [b]);
    const g2 = await c.group(d, [b]);
    const dm = await c.dm(a, b);
    const sb = await c.connect(b, { autoJoin: true });
    const sa = await c.connect(a);
    const sd = await c.connect(d);
    const m1 = await send(sa, g1.id);
    const m2 = await send(sd, g2.id);
    const m3 = await send(sa, dm.id);
    for (const m of [m1, m2, m3]) {
      const got = await waitFor(sb, 'message:new', (p) => p.clientId === m.clientId);
      assert.equal(got.body, m.body);
    }
  });

  spec('autoJoin with the token in the Authorization header also joins chat rooms', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const g = await c.group(a, [b]);
    const sb = await c.connect({ auth: { autoJoin: true }, headers: { Authorization: `Bearer ${b.token}` } });
    const sa = await c.connect(a);
    const m = await send(sa, g.id);
    await waitFor(sb, 'message:new', (p) => p.clientId === m.clientId);
  });
});

describe('§1 presence snapshot on connect', () => {
  spec('presence:snapshot arrives right after connect with the online contacts', async (c) => {
    const [a, b, d, stranger] = [c.user('a'), c.user('b'), c.user('d'), c.user('x')];
    await c.group(a, [b]);
    await c.dm(a, d);
    await c.connect(b);
    await c.connect(d);
    await c.connect(stranger);
    const sa = await c.connect(a);
    const snap = await waitFor(sa, 'presence:snapshot');
    assert.deepEqual(Object.keys(snap), ['online'], `snapshot: ${show(snap)}`);
    assertSameSet(snap.online.filter((u) => u !== a.id), [b.id, d.id], 'snapshot.online');
  });

  spec('presence:snapshot is { online: [] } when no contact is online', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    await c.group(a, [b]);
    const sa = await c.connect(a);
    const snap = await waitFor(sa, 'presence:snapshot');
    assert.deepEqual(snap.online.filter((u) => u !== a.id), []);
  });
});
