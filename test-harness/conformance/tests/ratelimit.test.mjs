// PROTOCOL.md §5, rate limit: RATE_LIMIT_MESSAGES new messages per RATE_LIMIT_WINDOW_MS per
// user, across devices, sliding; only stored messages count; retries are never limited.

import { describe } from 'node:test';
import assert from 'node:assert/strict';
import { CFG, spec, uuid, call, assertOk, assertErr, send, sleep, show, expectNo, TEST_TIMEOUT } from './helpers.mjs';

const N = CFG.rateMessages;
const W = CFG.rateWindowMs;
/** Long enough for every message sent before it to have left the window. */
const AFTER_WINDOW = Math.ceil(W * 1.25) + 300;
const timeout = TEST_TIMEOUT + W * 4;

/** Fires `count` sends at once, alternating over `sockets`; resolves with the acks. */
function burst(sockets, chatId, count, tag = 'b') {
  return Promise.all(
    Array.from({ length: count }, (_, i) =>
      call(sockets[i % sockets.length], 'message:send', { chatId, body: `${tag} ${i}`, clientId: uuid() }),
    ),
  );
}

const count = (acks, pred) => acks.filter(pred).length;
const isOk = (a) => a?.ok === true;
const isLimited = (a) => a?.ok === false && a.error === 'RATE_LIMITED';

describe('§5 rate limit', () => {
  spec(`${N} messages per window pass, the next one is RATE_LIMITED (two devices alternating)`, async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const chat = await c.group(a, [b]);
    const s1 = await c.connect(a);
    const s2 = await c.connect(a);
    const started = Date.now();
    const acks = await burst([s1, s2], chat.id, N);
    for (const ack of acks) assertOk(ack);
    const extra = await call(s1, 'message:send', { chatId: chat.id, body: 'one too many', clientId: uuid() });
    const elapsed = Date.now() - started;
    if (elapsed >= W) {
      c.t.diagnostic(`inconclusive timing: the burst took ${elapsed} ms >= window ${W} ms`);
      return;
    }
    assertErr(extra, 'RATE_LIMITED');
    assertErr(await call(s2, 'message:send', { chatId: chat.id, body: 'also too many', clientId: uuid() }), 'RATE_LIMITED');
  }, { timeout });

  spec('a burst of N+2 concurrent sends stores exactly N', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const chat = await c.group(a, [b]);
    const s1 = await c.connect(a);
    const s2 = await c.connect(a);
    const started = Date.now();
    const acks = await burst([s1, s2], chat.id, N + 2);
    const elapsed = Date.now() - started;
    if (elapsed >= W) {
      c.t.diagnostic(`inconclusive timing: the burst took ${elapsed} ms >= window ${W} ms`);
      return;
    }
    assert.equal(count(acks, isOk), N, `acks: ${show(acks.map((x) => x.error ?? 'ok'))}`);
    assert.equal(count(acks, isLimited), 2, `acks: ${show(acks.map((x) => x.error ?? 'ok'))}`);
    const synced = assertOk(await call(s1, 'messages:sync', { chatId: chat.id, afterSeq: 0, limit: 200 }));
    assert.equal(synced.messages.length, N, 'only the accepted messages are stored');
  }, { timeout });

  spec('the limit is per user, across chats: another chat of the same user is limited too', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const g1 = await c.group(a, [b]);
    const g2 = await c.group(a, [b]);
    const s = await c.connect(a);
    const started = Date.now();
    for (const ack of await burst([s], g1.id, N)) assertOk(ack);
    const extra = await call(s, 'message:send', { chatId: g2.id, body: 'other chat', clientId: uuid() });
    if (Date.now() - started >= W) return c.t.diagnostic('inconclusive timing');
    assertErr(extra, 'RATE_LIMITED');
  }, { timeout });

  spec('another user is not affected by a user\'s rate limit', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const chat = await c.group(a, [b]);
    const sa = await c.connect(a);
    const sb = await c.connect(b);
    const started = Date.now();
    for (const ack of await burst([sa], chat.id, N)) assertOk(ack);
    const limited = await call(sa, 'message:send', { chatId: chat.id, body: 'limited', clientId: uuid() });
    if (Date.now() - started < W) assertErr(limited, 'RATE_LIMITED');
    await send(sb, chat.id, 'b is fine');
  }, { timeout });

  spec('the window slides: after a window has passed, sends succeed again', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const chat = await c.group(a, [b]);
    const s = await c.connect(a);
    for (const ack of await burst([s], chat.id, N)) assertOk(ack);
    await sleep(AFTER_WINDOW);
    for (const ack of await burst([s], chat.id, N, 'again')) assertOk(ack, 'after the window');
  }, { timeout });

  spec('refused and invalid attempts do not count', async (c) => {
    const [a, b, x] = [c.user('a'), c.user('b'), c.user('x')];
    const chat = await c.group(a, [b]);
    const foreign = await c.group(x, [b]);
    const s = await c.connect(a);
    for (let i = 0; i < N + 2; i++) {
      assertErr(await call(s, 'message:send', { chatId: chat.id, body: '   ', clientId: uuid() }), 'VALIDATION_ERROR');
      assertErr(await call(s, 'message:send', { chatId: foreign.id, body: 'not mine', clientId: uuid() }), 'FORBIDDEN');
      assertErr(await call(s, 'message:send', { chatId: uuid(), body: 'nowhere', clientId: uuid() }), 'NOT_FOUND');
    }
    for (const ack of await burst([s], chat.id, N)) assertOk(ack, 'after many refused attempts');
  }, { timeout });

  spec('rate-limited attempts do not count', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const chat = await c.group(a, [b]);
    const s = await c.connect(a);
    const t0 = Date.now();
    for (const ack of await burst([s], chat.id, N)) assertOk(ack);
    // Keep hammering through the middle and late part of the window: if these counted,
    // they would still be in the window when we send again below.
    let limited = 0;
    while (Date.now() - t0 < W * 0.85) {
      const ack = await call(s, 'message:send', { chatId: chat.id, body: 'hammer', clientId: uuid() });
      if (isLimited(ack)) limited++;
      else if (Date.now() - t0 < W) assertErr(ack, 'RATE_LIMITED');
      await sleep(Math.max(10, Math.floor(W / 30)));
    }
    assert.ok(limited > 0, 'some attempts must have been rate limited');
    const wait = t0 + Math.ceil(W * 1.35) + 200 - Date.now();
    if (wait > 0) await sleep(wait);
    for (const ack of await burst([s], chat.id, N, 'later')) assertOk(ack, 'rate-limited attempts must not have counted');
  }, { timeout });

  spec('a retry of an already stored clientId is never rate limited', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const chat = await c.group(a, [b]);
    const s = await c.connect(a);
    const first = { chatId: chat.id, body: 'first', clientId: uuid() };
    const firstAck = assertOk(await call(s, 'message:send', first));
    const started = Date.now();
    for (const ack of await burst([s], chat.id, N - 1)) assertOk(ack);
    const over = await call(s, 'message:send', { chatId: chat.id, body: 'over', clientId: uuid() });
    if (Date.now() - started < W) assertErr(over, 'RATE_LIMITED');
    for (let i = 0; i < 3; i++) {
      const retry = assertOk(await call(s, 'message:send', first), 'retry while limited');
      assert.equal(retry.serverId, firstAck.serverId);
      assert.equal(retry.seq, firstAck.seq);
    }
  }, { timeout });

  spec('a RATE_LIMITED send broadcasts nothing', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const chat = await c.group(a, [b]);
    const sb = await c.connect(b, { autoJoin: true });
    const s = await c.connect(a);
    const started = Date.now();
    for (const ack of await burst([s], chat.id, N)) assertOk(ack);
    const clientId = uuid();
    const over = await call(s, 'message:send', { chatId: chat.id, body: 'over', clientId });
    if (Date.now() - started >= W) return c.t.diagnostic('inconclusive timing');
    assertErr(over, 'RATE_LIMITED');
    await expectNo(sb, 'message:new', CFG.quietMs, (p) => p.clientId === clientId);
  }, { timeout });
});
