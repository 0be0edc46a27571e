// PROTOCOL.md §10: the largest accepted packet (MAX_PAYLOAD_BYTES) over WebSocket,
// polling and the REST API; other connections never notice.

import { describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  CFG, spec, uuid, call, assertOk, assertHttpErr, waitFor, waitDisconnect, send, http, show,
  hasPolling, hasWebsocket, listChats,
} from './helpers.mjs';

const MAX = CFG.maxPayloadBytes;

/** A second pair of users exchanging a message: proof that nobody else noticed. */
async function bystanders(c) {
  const [x, y] = [c.user('x'), c.user('y')];
  const chat = await c.group(x, [y]);
  const sx = await c.connect(x);
  const sy = await c.connect(y, { autoJoin: true });
  return {
    sx,
    sy,
    async check() {
      const m = await send(sx, chat.id, 'still fine');
      await waitFor(sy, 'message:new', (p) => p.clientId === m.clientId);
      assert.equal(sx.connected && sy.connected, true, 'bystanders stay connected');
    },
  };
}

describe('§10 WebSocket', () => {
  spec('a packet larger than MAX_PAYLOAD_BYTES closes that WebSocket connection', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const chat = await c.group(a, [b]);
    const others = await bystanders(c);
    const sa = await c.connect(a, { transports: ['websocket'] });
    const sa2 = await c.connect(a, { transports: ['websocket'] });
    let acked = null;
    sa.timeout(CFG.waitMs).emit('message:send', { chatId: chat.id, body: 'a'.repeat(MAX + 1024), clientId: uuid() }, (err, ack) => {
      if (!err) acked = ack;
    });
    const reason = await waitDisconnect(sa);
    assert.ok(/transport (close|error)|ping timeout|io server disconnect/.test(reason), `disconnect reason: ${reason}`);
    assert.equal(acked, null, `an oversize packet must not be answered: ${show(acked)}`);
    await others.check();
    assert.equal(sa2.connected, true, 'the same user\'s other socket is unaffected');
    assertOk(await call(sa2, 'presence:ping', {}));
  }, { skip: hasWebsocket ? undefined : 'CHAT_TRANSPORTS has no websocket' });

  spec('a packet just under MAX_PAYLOAD_BYTES is processed and answered', async (c) => {
    const a = c.user('a');
    const s = await c.connect(a, { transports: ['websocket'] });
    // A lookup-sized id far too long to exist: the packet must be read and answered.
    const ack = await call(s, 'room:join', { chatId: 'z'.repeat(MAX - 256) });
    assert.equal(ack?.ok, false, show(ack).slice(0, 200));
    assert.equal(s.connected, true);
    assertOk(await call(s, 'presence:ping', {}));
  }, { skip: hasWebsocket ? undefined : 'CHAT_TRANSPORTS has no websocket' });
});

describe('§10 polling', () => {
  const base = `${CFG.url}${CFG.socketPath.replace(/\/+$/, '')}/?EIO=4&transport=polling`;

  async function handshake() {
    const res = await fetch(`${base}&t=${Date.now()}`, { signal: AbortSignal.timeout(CFG.waitMs) });
    const text = await res.text();
    assert.equal(res.status, 200, `polling handshake: ${res.status} ${text.slice(0, 200)}`);
    assert.equal(text[0], '0', `an Engine.IO OPEN packet: ${text.slice(0, 200)}`);
    const open = JSON.parse(text.slice(1));
    assert.equal(typeof open.sid, 'string');
    return open;
  }

  spec('a polling POST larger than MAX_PAYLOAD_BYTES is HTTP 413', async (c) => {
    const others = await bystanders(c);
    const { sid } = await handshake();
    const big = `42["message:send",{"chatId":"x","clientId":"${uuid()}","body":"${'a'.repeat(MAX + 1024)}"}]`;
    let res;
    try {
      res = await fetch(`${base}&sid=${encodeURIComponent(sid)}`, {
        method: 'POST',
        headers: { 'content-type': 'text/plain;charset=UTF-8' },
        body: big,
        signal: AbortSignal.timeout(CFG.waitMs),
      });
    } catch (err) {
      assert.fail(`the oversize POST must be answered with 413, the request failed instead: ${err.cause?.code ?? err.message}`);
    }
    assert.equal(res.status, 413, `status ${res.status}: ${(await res.text()).slice(0, 200)}`);
    await others.check();
    // Tidy up the raw session.
    await fetch(`${base}&sid=${encodeURIComponent(sid)}`, { method: 'POST', body: '1', signal: AbortSignal.timeout(2000) }).catch(() => {});
  }, { skip: hasPolling ? undefined : 'CHAT_TRANSPORTS has no polling' });

  spec('a socket.io-client emit larger than MAX_PAYLOAD_BYTES over polling does not affect others', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const chat = await c.group(a, [b]);
    const others = await bystanders(c);
    const sa = await c.connect(a, { transports: ['polling'] });
    let acked = null;
    sa.timeout(CFG.waitMs).emit('message:send', { chatId: chat.id, body: 'a'.repeat(MAX + 1024), clientId: uuid() }, (err, ack) => {
      if (!err) acked = ack;
    });
    await new Promise((r) => setTimeout(r, CFG.quietMs));
    assert.ok(acked === null || acked.ok === false, `an oversize packet must not be stored: ${show(acked)}`);
    await others.check();
  }, { skip: hasPolling ? undefined : 'CHAT_TRANSPORTS has no polling' });
});

describe('§10 REST', () => {
  spec('a REST body larger than MAX_PAYLOAD_BYTES is 413 PAYLOAD_TOO_LARGE', async (c) => {
    const a = c.user('a');
    const res = await http('POST', '/api/v1/chats', {
      token: a.token,
      body: { kind: 'group', memberIds: [c.user('b').id], title: 't'.repeat(MAX + 1024) },
    });
    assertHttpErr(res, 413, 'PAYLOAD_TOO_LARGE');
    assert.deepEqual(await listChats(a), [], 'nothing was created');
  });

  spec('an oversize PATCH body is 413 PAYLOAD_TOO_LARGE', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const chat = await c.group(a, [b], 'keep');
    const res = await http('PATCH', `/api/v1/chats/${chat.id}`, { token: a.token, body: { title: 'x'.repeat(MAX + 1024) } });
    assertHttpErr(res, 413, 'PAYLOAD_TOO_LARGE');
  });

  spec('a REST body just under MAX_PAYLOAD_BYTES is not 413', async (c) => {
    const a = c.user('a');
    const res = await http('POST', '/api/v1/chats', {
      token: a.token,
      body: { kind: 'group', memberIds: [c.user('b').id], title: 't'.repeat(MAX - 512) },
    });
    assert.notEqual(res.status, 413, `a body of about ${MAX - 470} bytes is within the limit: ${res.text.slice(0, 200)}`);
    assert.ok(res.status < 500, `status ${res.status}`);
  });
});

describe('Beyond the contract: the event pace (EVENT_BURST, EVENT_RATE_PER_SEC)', () => {
  const skip = CFG.eventBurst === null ? 'the server states no event pace (EVENT_BURST unset)' : undefined;

  spec('events past the pace are answered RATE_LIMITED, and a flood past that disconnects the connection', async (c) => {
    const a = c.user('a');
    const others = await bystanders(c);
    const sa = await c.connect(a);
    // Waiting for each batch's answers, as a client that reads them does, until refused.
    const codes = {};
    const batch = 50;
    for (let sent = 0; !codes.RATE_LIMITED && sent < CFG.eventBurst * 20; sent += batch) {
      const acks = await Promise.all(Array.from({ length: batch }, () => call(sa, 'presence:ping', {})));
      for (const ack of acks) codes[ack.ok ? 'ok' : ack.error] = (codes[ack.ok ? 'ok' : ack.error] ?? 0) + 1;
    }
    assert.ok(codes.ok >= 1 && codes.RATE_LIMITED >= 1, `a burst is served, then refused: ${show(codes)}`);
    assert.deepEqual(Object.keys(codes).sort(), ['RATE_LIMITED', 'ok'], `nothing else: ${show(codes)}`);
    // Then without waiting for any answer: the server cuts the connection off.
    const gone = waitDisconnect(sa);
    for (let i = 0; i < CFG.eventBurst * 3 && sa.connected; i++) sa.emit('presence:ping', {}, () => {});
    // A Socket.IO disconnect when it gets through, else the transport's close (the socket's
    // send buffer may be full of answers by then).
    const reason = await gone;
    assert.ok(/io server disconnect|transport close/.test(reason), `disconnect reason: ${reason}`);
    await others.check();
  }, { skip });
});
