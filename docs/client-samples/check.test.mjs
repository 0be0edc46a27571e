// Keeps docs/client.md honest: every TypeScript block in it is one of the files here,
// verbatim, and those files (type-checked and compiled by `tsc` first: `npm test`) do
// what the guide says against a live chat-server in demo mode.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { startServer } from '../../test-harness/browser/server.mjs';
import { connect } from './build/connect.js';
import { ChatError, request } from './build/request.js';
import { sendMessage } from './build/send.js';
import { ChatLog } from './build/catch-up.js';
import { TypingNotifier } from './build/typing.js';

const HERE = new URL('./', import.meta.url);
const GUIDE = new URL('../client.md', import.meta.url);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

test('every code block of docs/client.md is a sample file, verbatim, and every sample is shown', () => {
  const guide = readFileSync(GUIDE, 'utf8');
  const samples = readdirSync(HERE).filter((name) => name.endsWith('.ts')).sort();
  const shown = [];
  // A sample is shown as: <!-- sample: name.ts --> then a ```ts block.
  const block = /<!-- sample: ([\w.-]+) -->\n```ts\n([\s\S]*?)```\n/g;
  for (const [, name, code] of guide.matchAll(block)) {
    assert.ok(samples.includes(name), `docs/client.md shows ${name}, which is not in docs/client-samples/`);
    assert.equal(code, readFileSync(new URL(name, HERE), 'utf8'), `the block of ${name} in docs/client.md differs from the file (npm run sync-doc)`);
    shown.push(name);
  }
  assert.deepEqual([...shown].sort(), samples, 'each sample file is shown exactly once');
  const tsBlocks = guide.match(/```(ts|typescript|js|javascript)\n/g) ?? [];
  assert.equal(tsBlocks.length, shown.length, 'every TypeScript/JavaScript block of docs/client.md is a checked sample');
});

let server;
const sockets = [];

async function tokenFor(name) {
  const res = await fetch(`${server.url}/api/demo/token`, { method: 'POST', body: JSON.stringify({ name }) });
  assert.equal(res.status, 200);
  return (await res.json()).token;
}

async function user(name) {
  const socket = await connect(server.url, await tokenFor(name));
  sockets.push(socket);
  return socket;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
async function eventually(check, what, ms = 5000) {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

before(async () => {
  server = await startServer({ args: ['--demo'] });
});

after(async () => {
  for (const socket of sockets) socket.close();
  await server?.stop();
});

test('connect.ts: a refused handshake rejects with the code, a good token connects', async () => {
  await assert.rejects(connect(server.url, 'not-a-token'), (error) => {
    assert.equal(error.message, 'UNAUTHORIZED');
    if (error.data != null) assert.equal(error.data.code, 'UNAUTHORIZED');
    return true;
  });
  const socket = await user('sample-connect');
  assert.equal(socket.connected, true);
});

test('request.ts and send.ts: acks, error codes, and a retry with the same clientId stores once', async () => {
  const alice = await user('sample-alice');
  const bob = await user('sample-bob');
  const carol = await user('sample-carol');
  const { chat } = await request(alice, 'chat:create', { kind: 'dm', memberIds: ['sample-bob'] });
  await request(bob, 'room:join', { chatId: chat.id });
  const received = [];
  bob.on('message:new', (message) => received.push(message));

  const clientId = crypto.randomUUID();
  const first = await sendMessage(alice, chat.id, 'hello', { clientId });
  const again = await sendMessage(alice, chat.id, 'hello', { clientId });
  assert.equal(again.serverId, first.serverId);
  assert.equal(again.seq, first.seq);
  await eventually(() => received.length >= 1, 'message:new');
  await sleep(300);
  assert.equal(received.length, 1, 'the retry broadcast nothing');

  await assert.rejects(sendMessage(alice, chat.id, '   '), (error) => {
    assert.ok(error instanceof ChatError);
    assert.equal(error.code, 'VALIDATION_ERROR');
    assert.match(error.correlationId, UUID);
    return true;
  });
  await assert.rejects(sendMessage(carol, chat.id, 'let me in'), (error) => error instanceof ChatError && error.code === 'FORBIDDEN');
  await assert.rejects(request(alice, 'room:join', { chatId: 'no-such-chat' }), (error) => error.code === 'NOT_FOUND');
});

test('catch-up.ts: after a reconnect, messages:sync brings what was missed, in order, once', async () => {
  const alice = await user('sample-dana');
  const bob = await user('sample-eve');
  const { chat } = await request(alice, 'chat:create', { kind: 'dm', memberIds: ['sample-eve'] });
  await sendMessage(alice, chat.id, 'before');
  const log = new ChatLog(bob);
  await log.follow(chat.id);
  assert.deepEqual(log.messages(chat.id).map((m) => m.body), ['before']);

  bob.disconnect();
  for (const body of ['one', 'two', 'three']) await sendMessage(alice, chat.id, body);
  bob.connect();
  await eventually(() => log.messages(chat.id).length === 4, 'catch-up after reconnect');
  await sendMessage(alice, chat.id, 'live');
  await eventually(() => log.messages(chat.id).length === 5, 'a live message after catch-up');
  assert.deepEqual(log.messages(chat.id).map((m) => m.body), ['before', 'one', 'two', 'three', 'live']);
  assert.deepEqual(log.messages(chat.id).map((m) => m.seq), [1, 2, 3, 4, 5]);
});

test('typing.ts: many keystrokes send one typing:start, and a pause sends typing:stop', async () => {
  const alice = await user('sample-frank');
  const bob = await user('sample-grace');
  const { chat } = await request(alice, 'chat:create', { kind: 'dm', memberIds: ['sample-grace'] });
  await request(bob, 'room:join', { chatId: chat.id });
  await request(alice, 'room:join', { chatId: chat.id });
  const updates = [];
  bob.on('typing:update', (update) => updates.push(update.state));
  const typing = new TypingNotifier(alice, 3000, 300);
  for (let i = 0; i < 10; i++) {
    typing.keystroke(chat.id);
    await sleep(20);
  }
  await eventually(() => updates.includes('stop'), 'typing:stop after the pause');
  assert.deepEqual(updates, ['start', 'stop']);
});
