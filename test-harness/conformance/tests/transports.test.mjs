// PROTOCOL.md §1, transports: WebSocket always; polling (and polling → WebSocket upgrade)
// when CHAT_TRANSPORTS lists it.

import { describe } from 'node:test';
import assert from 'node:assert/strict';
import { CFG, spec, call, assertOk, waitFor, send, hasPolling, hasWebsocket, sleep } from './helpers.mjs';

/** Sends one message each way between `sa` and `sb` (both in the chat room). */
async function roundtrip(chat, sa, sb, note) {
  const there = await send(sa, chat.id, `${note} →`);
  await waitFor(sb, 'message:new', (p) => p.clientId === there.clientId);
  const back = await send(sb, chat.id, `${note} ←`);
  await waitFor(sa, 'message:new', (p) => p.clientId === back.clientId);
  const big = await send(sa, chat.id, 'x'.repeat(8000));
  const got = await waitFor(sb, 'message:new', (p) => p.clientId === big.clientId);
  assert.equal(got.body.length, 8000);
}

function upgraded(s, timeoutMs = CFG.waitMs) {
  const engine = s.io.engine;
  if (engine.transport.name === 'websocket') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no upgrade to websocket within ${timeoutMs} ms (transport ${engine.transport.name})`)), timeoutMs);
    engine.once('upgrade', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

describe('transports', () => {
  spec('websocket only: connect, send and receive', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const chat = await c.group(a, [b]);
    const sa = await c.connect(a, { transports: ['websocket'], autoJoin: true });
    const sb = await c.connect(b, { transports: ['websocket'], autoJoin: true });
    assert.equal(sa.io.engine.transport.name, 'websocket');
    await roundtrip(chat, sa, sb, 'ws');
  }, { skip: hasWebsocket ? undefined : 'CHAT_TRANSPORTS has no websocket' });

  spec('polling only (no upgrade): connect, send and receive', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const chat = await c.group(a, [b]);
    const sa = await c.connect(a, { transports: ['polling'], upgrade: false, autoJoin: true });
    const sb = await c.connect(b, { transports: ['polling'], upgrade: false, autoJoin: true });
    await roundtrip(chat, sa, sb, 'polling');
    assert.equal(sa.io.engine.transport.name, 'polling');
    assert.equal(sb.io.engine.transport.name, 'polling');
    assertOk(await call(sa, 'presence:ping', {}));
  }, { skip: hasPolling ? undefined : 'CHAT_TRANSPORTS has no polling' });

  spec('polling stays connected across several ping intervals', async (c) => {
    const a = c.user('a');
    const s = await c.connect(a, { transports: ['polling'], upgrade: false });
    const pingInterval = s.io.engine._pingInterval ?? 25000;
    // Wait a little longer than one ping interval when it is short; otherwise just a while.
    await sleep(Math.min(pingInterval + 500, 3000));
    assert.equal(s.connected, true, `disconnected: ${s.disconnectReason}`);
    assertOk(await call(s, 'presence:ping', {}));
  }, { skip: hasPolling ? undefined : 'CHAT_TRANSPORTS has no polling' });

  spec('polling → websocket upgrade: connect, upgrade, send and receive', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const chat = await c.group(a, [b]);
    const sa = await c.connect(a, { transports: ['polling', 'websocket'], upgrade: true, autoJoin: true });
    const sb = await c.connect(b, { transports: ['polling', 'websocket'], upgrade: true, autoJoin: true });
    await Promise.all([upgraded(sa), upgraded(sb)]);
    assert.equal(sa.io.engine.transport.name, 'websocket');
    await roundtrip(chat, sa, sb, 'upgraded');
  }, { skip: hasPolling && hasWebsocket ? undefined : 'needs polling and websocket in CHAT_TRANSPORTS' });

  spec('a polling client and a websocket client talk to each other', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const chat = await c.group(a, [b]);
    const sa = await c.connect(a, { transports: ['polling'], upgrade: false, autoJoin: true });
    const sb = await c.connect(b, { transports: ['websocket'], autoJoin: true });
    await roundtrip(chat, sa, sb, 'mixed');
  }, { skip: hasPolling && hasWebsocket ? undefined : 'needs polling and websocket in CHAT_TRANSPORTS' });

  spec('messages sent right after connect over polling, before the upgrade, are not lost', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const chat = await c.group(a, [b]);
    const sb = await c.connect(b, { autoJoin: true });
    const sa = await c.connect(a, { transports: ['polling', 'websocket'], upgrade: true });
    const sends = await Promise.all(Array.from({ length: Math.min(3, CFG.rateMessages) }, (_, i) => send(sa, chat.id, `early ${i}`)));
    for (const m of sends) await waitFor(sb, 'message:new', (p) => p.clientId === m.clientId);
  }, { skip: hasPolling && hasWebsocket ? undefined : 'needs polling and websocket in CHAT_TRANSPORTS' });
});
