// PROTOCOL.md §6: typing indicators (fire-and-forget, timeout, disconnect, non-members).

import { describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  CFG, spec, uuid, call, assertOk, waitFor, waitForEntry, expectNo, expectNoAck, joinRoom, mark,
  received, disconnect, sleep, show, TEST_TIMEOUT,
} from './helpers.mjs';

const T = CFG.typingTimeoutMs;
const timeout = TEST_TIMEOUT + T * 4;

async function room(c) {
  const [a, b] = [c.user('typer'), c.user('watcher')];
  const chat = await c.group(a, [b]);
  const sa = await c.connect(a, { autoJoin: true });
  const sb = await c.connect(b, { autoJoin: true });
  return { a, b, chat, sa, sb };
}

const from = (user, state) => (p) => p.userId === user.id && (state === undefined || p.state === state);

describe('§6 typing', () => {
  spec('typing:start → other members in the room get state "start"', async (c) => {
    const { a, chat, sa, sb } = await room(c);
    sa.emit('typing:start', { chatId: chat.id });
    const upd = await waitFor(sb, 'typing:update', from(a, 'start'));
    assert.deepEqual(upd, { chatId: chat.id, userId: a.id, state: 'start' });
  });

  spec('typing:stop → other members get state "stop"', async (c) => {
    const { a, chat, sa, sb } = await room(c);
    sa.emit('typing:start', { chatId: chat.id });
    await waitFor(sb, 'typing:update', from(a, 'start'));
    sa.emit('typing:stop', { chatId: chat.id });
    const upd = await waitFor(sb, 'typing:update', from(a, 'stop'));
    assert.deepEqual(upd, { chatId: chat.id, userId: a.id, state: 'stop' });
  });

  spec('typing:update never goes to the typing user\'s own sockets', async (c) => {
    const { a, chat, sa, sb } = await room(c);
    const sa2 = await c.connect(a, { autoJoin: true });
    sa.emit('typing:start', { chatId: chat.id });
    await waitFor(sb, 'typing:update', from(a, 'start'));
    sa.emit('typing:stop', { chatId: chat.id });
    await waitFor(sb, 'typing:update', from(a, 'stop'));
    await expectNo(sa2, 'typing:update', CFG.quietMs);
    await expectNo(sa, 'typing:update', 0);
  });

  spec('a repeated typing:start while typing sends nothing new', async (c) => {
    const { a, chat, sa, sb } = await room(c);
    sa.emit('typing:start', { chatId: chat.id });
    await waitFor(sb, 'typing:update', from(a, 'start'));
    sa.emit('typing:start', { chatId: chat.id });
    sa.emit('typing:start', { chatId: chat.id });
    // Watch for less than the timeout (a refreshed start must not produce a stop either).
    await expectNo(sb, 'typing:update', Math.max(200, Math.min(CFG.quietMs, T * 0.6)), from(a), { since: mark(sb) });
    assert.equal(received(sb, 'typing:update', from(a, 'start')).length, 1);
  }, { timeout });

  spec(`without a new typing:start for TYPING_TIMEOUT_MS (${T} ms) the server sends "stop"`, async (c) => {
    const { a, chat, sa, sb } = await room(c);
    sa.emit('typing:start', { chatId: chat.id });
    const start = await waitForEntry(sb, 'typing:update', from(a, 'start'));
    const stop = await waitForEntry(sb, 'typing:update', from(a, 'stop'), T + CFG.waitMs);
    const elapsed = stop.at - start.at;
    // Lower bound only (with margin for delivery jitter): it must not stop early.
    assert.ok(elapsed >= T * 0.5, `stop came ${Math.round(elapsed)} ms after start, timeout is ${T} ms`);
    assert.deepEqual(stop.payload, { chatId: chat.id, userId: a.id, state: 'stop' });
  }, { timeout });

  spec('repeated typing:start keeps the indicator alive past TYPING_TIMEOUT_MS', async (c) => {
    const { a, chat, sa, sb } = await room(c);
    sa.emit('typing:start', { chatId: chat.id });
    const start = await waitForEntry(sb, 'typing:update', from(a, 'start'));
    // Refresh every T/3 for 2T: there must be no stop meanwhile.
    const until = performance.now() + 2 * T;
    while (performance.now() < until) {
      await sleep(Math.max(20, Math.floor(T / 3)));
      sa.emit('typing:start', { chatId: chat.id });
    }
    const stops = received(sb, 'typing:update', from(a, 'stop'));
    assert.deepEqual(stops, [], `no stop while refreshed (started at ${Math.round(start.at)})`);
    assert.equal(received(sb, 'typing:update', from(a, 'start')).length, 1, 'one start only');
    // And once the refreshes end, the timeout stop does come.
    await waitFor(sb, 'typing:update', from(a, 'stop'), T + CFG.waitMs);
  }, { timeout: timeout + T * 2 });

  spec('a typing:start after a stop starts again', async (c) => {
    const { a, chat, sa, sb } = await room(c);
    sa.emit('typing:start', { chatId: chat.id });
    await waitFor(sb, 'typing:update', from(a, 'start'));
    sa.emit('typing:stop', { chatId: chat.id });
    await waitFor(sb, 'typing:update', from(a, 'stop'));
    const since = mark(sb);
    sa.emit('typing:start', { chatId: chat.id });
    await waitFor(sb, 'typing:update', from(a, 'start'), CFG.waitMs, { since });
  });

  spec('disconnecting the typer\'s last socket in the chat sends "stop"', async (c) => {
    const { a, chat, sa, sb } = await room(c);
    sa.emit('typing:start', { chatId: chat.id });
    await waitFor(sb, 'typing:update', from(a, 'start'));
    const before = performance.now();
    disconnect(sa);
    const stop = await waitForEntry(sb, 'typing:update', from(a, 'stop'), T + CFG.waitMs);
    const elapsed = stop.at - before;
    if (T >= 500) {
      // Tells a disconnect stop (a few ms) from a timeout stop (>= T after the last start);
      // with T below 500 ms the two cannot be told apart on a noisy machine.
      assert.ok(elapsed < T * 0.75, `stop came ${Math.round(elapsed)} ms after the disconnect: looks like the timeout (${T} ms), not the disconnect`);
    } else {
      c.t.diagnostic(`TYPING_TIMEOUT_MS=${T} is too short to tell a disconnect stop from a timeout stop; stop came after ${Math.round(elapsed)} ms`);
    }
  }, { timeout });

  spec('typing of a non-member is ignored silently', async (c) => {
    const { chat, sb } = await room(c);
    const x = c.user('x');
    const sx = await c.connect(x);
    sx.emit('typing:start', { chatId: chat.id });
    await expectNoAck(sx, 'typing:start', { chatId: chat.id }, CFG.quietMs);
    await expectNo(sb, 'typing:update', CFG.quietMs, (p) => p.userId === x.id);
    assert.equal(sx.connected, true);
    assert.deepEqual(sx.log.filter((e) => e.event === 'typing:update'), []);
    assertOk(await call(sx, 'presence:ping', {}));
  });

  spec('typing for an unknown chat is ignored silently', async (c) => {
    const x = c.user('x');
    const sx = await c.connect(x);
    sx.emit('typing:start', { chatId: uuid() });
    sx.emit('typing:stop', { chatId: uuid() });
    await expectNoAck(sx, 'typing:start', { chatId: uuid() }, CFG.quietMs);
    assert.equal(sx.connected, true);
    assertOk(await call(sx, 'presence:ping', {}));
  });

  spec('typing in one chat does not show in another chat', async (c) => {
    const [a, b] = [c.user('a'), c.user('b')];
    const g1 = await c.group(a, [b]);
    const g2 = await c.group(a, [b]);
    const sa = await c.connect(a, { autoJoin: true });
    const sb = await c.connect(b);
    await joinRoom(sb, g2.id);
    sa.emit('typing:start', { chatId: g1.id });
    await expectNo(sb, 'typing:update', CFG.quietMs);
    sa.emit('typing:start', { chatId: g2.id });
    const upd = await waitFor(sb, 'typing:update', from(a, 'start'));
    assert.equal(upd.chatId, g2.id, show(upd));
  });
});
