// PROTOCOL.md §8: presence (online/offline to contacts, multi-device, throttle, lastSeenAt).

import { describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  CFG, spec, call, assertOk, assertIsoNow, assertTimeNow, waitFor, waitForEntry, expectNo, disconnect,
  received, sleep, show, mark, TEST_TIMEOUT,
} from './helpers.mjs';

const P = CFG.presenceThrottleMs;
const timeout = TEST_TIMEOUT + P * 6;
const about = (user, status) => (p) => p.userId === user.id && (status === undefined || p.status === status);

/** a and an observer b who share a DM; b is connected. */
async function contacts(c) {
  const [a, b] = [c.user('subject'), c.user('observer')];
  await c.dm(a, b);
  const sb = await c.connect(b);
  return { a, b, sb };
}

describe('§8 presence', () => {
  spec('a contact gets presence:update "online" when the user connects', async (c) => {
    const { a, sb } = await contacts(c);
    await c.connect(a);
    const upd = await waitFor(sb, 'presence:update', about(a, 'online'));
    assert.equal(upd.status, 'online');
    assertIsoNow(upd.lastSeenAt, 'lastSeenAt');
  }, { timeout });

  spec('a contact gets presence:update "offline" when the user\'s last socket disconnects', async (c) => {
    const { a, sb } = await contacts(c);
    const sa = await c.connect(a);
    const on = await waitFor(sb, 'presence:update', about(a, 'online'));
    disconnect(sa);
    const off = await waitFor(sb, 'presence:update', about(a, 'offline'), P + CFG.waitMs);
    assertIsoNow(off.lastSeenAt, 'lastSeenAt');
    assert.ok(Date.parse(off.lastSeenAt) >= Date.parse(on.lastSeenAt), `offline lastSeenAt ${off.lastSeenAt} < online ${on.lastSeenAt}`);
  }, { timeout });

  spec('with several devices the user goes offline only after the last socket', async (c) => {
    const { a, sb } = await contacts(c);
    const sa1 = await c.connect(a);
    const sa2 = await c.connect(a);
    await waitFor(sb, 'presence:update', about(a, 'online'));
    disconnect(sa1);
    await expectNo(sb, 'presence:update', P + CFG.quietMs, about(a, 'offline'));
    assert.equal(received(sb, 'presence:update', about(a, 'online')).length, 1, 'a second device sends no second "online"');
    disconnect(sa2);
    await waitFor(sb, 'presence:update', about(a, 'offline'), P + CFG.waitMs);
  }, { timeout });

  spec('a non-contact gets no presence:update', async (c) => {
    const { a, sb } = await contacts(c);
    const x = c.user('stranger');
    const sx = await c.connect(x);
    const sa = await c.connect(a);
    await waitFor(sb, 'presence:update', about(a, 'online'));
    disconnect(sa);
    await waitFor(sb, 'presence:update', about(a, 'offline'), P + CFG.waitMs);
    assert.deepEqual(received(sx, 'presence:update', about(a)), []);
    await expectNo(sx, 'presence:update', CFG.quietMs, about(a));
  }, { timeout });

  spec('every contact gets the update, on every socket', async (c) => {
    const [a, b, d] = [c.user('subject'), c.user('b'), c.user('d')];
    await c.group(a, [b, d]);
    const sb1 = await c.connect(b);
    const sb2 = await c.connect(b);
    const sd = await c.connect(d);
    await c.connect(a);
    for (const s of [sb1, sb2, sd]) await waitFor(s, 'presence:update', about(a, 'online'));
  }, { timeout });

  spec('a flap inside the throttle window sends only the final state, at the window\'s end', async (c) => {
    const { a, sb } = await contacts(c);
    const sa = await c.connect(a);
    const on = await waitForEntry(sb, 'presence:update', about(a, 'online'));
    disconnect(sa); // inside the window opened by "online"
    const off = await waitForEntry(sb, 'presence:update', about(a, 'offline'), P + CFG.waitMs);
    const gap = off.at - on.at;
    // Lower bound only, with margin for delivery jitter.
    assert.ok(gap >= P * 0.5, `"offline" came ${Math.round(gap)} ms after "online"; throttle is ${P} ms`);
    await sleep(CFG.quietMs);
    assert.deepEqual(received(sb, 'presence:update', about(a)).map((p) => p.status), ['online', 'offline']);
  }, { timeout });

  spec('a flap back to the last sent state inside the window sends nothing', async (c) => {
    const { a, sb } = await contacts(c);
    const sa = await c.connect(a);
    const on = await waitForEntry(sb, 'presence:update', about(a, 'online'));
    const t0 = performance.now();
    disconnect(sa);
    await c.connect(a);
    const flapMs = performance.now() - t0;
    await sleep(2 * P + CFG.quietMs);
    const statuses = received(sb, 'presence:update', about(a)).map((p) => p.status);
    if (flapMs > P * 0.5 && statuses.length > 1) {
      c.t.diagnostic(`inconclusive: the reconnect took ${Math.round(flapMs)} ms of a ${P} ms window`);
      return;
    }
    assert.deepEqual(statuses, ['online'], `offline→online inside the window after "online" (at ${Math.round(on.at)}) must send nothing: ${show(statuses)}`);
  }, { timeout });

  spec('several flaps inside the window collapse into the final state', async (c) => {
    const { a, sb } = await contacts(c);
    const sa = await c.connect(a);
    await waitFor(sb, 'presence:update', about(a, 'online'));
    disconnect(sa);
    const sa2 = await c.connect(a);
    disconnect(sa2);
    const sa3 = await c.connect(a);
    disconnect(sa3);
    await waitFor(sb, 'presence:update', about(a, 'offline'), P + CFG.waitMs);
    await sleep(P + CFG.quietMs);
    assert.deepEqual(received(sb, 'presence:update', about(a)).map((p) => p.status), ['online', 'offline']);
  }, { timeout });

  spec('after the window, a new change is sent again', async (c) => {
    const { a, sb } = await contacts(c);
    const sa = await c.connect(a);
    await waitFor(sb, 'presence:update', about(a, 'online'));
    disconnect(sa);
    await waitFor(sb, 'presence:update', about(a, 'offline'), P + CFG.waitMs);
    await sleep(P + 100);
    const since = mark(sb);
    await c.connect(a);
    await waitFor(sb, 'presence:update', about(a, 'online'), P + CFG.waitMs, { since });
  }, { timeout });

  spec('presence:ping acks { serverTime } and sends no presence:update (status unchanged)', async (c) => {
    const { a, sb } = await contacts(c);
    const sa = await c.connect(a);
    await waitFor(sb, 'presence:update', about(a, 'online'));
    await sleep(P + 100);
    const since = mark(sb);
    const data = assertOk(await call(sa, 'presence:ping', {}));
    assertTimeNow(data.serverTime, 'serverTime');
    await expectNo(sb, 'presence:update', P + CFG.quietMs, about(a), { since });
  }, { timeout });

  spec('the snapshot of a connecting user lists a contact who is online, not one who went offline', async (c) => {
    const [a, b, d] = [c.user('a'), c.user('b'), c.user('d')];
    await c.group(a, [b, d]);
    await c.connect(b);
    const sd = await c.connect(d);
    disconnect(sd);
    await sleep(300);
    const sa = await c.connect(a);
    const snap = await waitFor(sa, 'presence:snapshot');
    assert.ok(snap.online.includes(b.id), show(snap));
    assert.ok(!snap.online.includes(d.id), show(snap));
  }, { timeout });
});
