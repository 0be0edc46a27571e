// The demo web client in a real browser: Debian's Chromium (headless), driven by
// playwright-core. chat-server runs in demo mode; two pages sign in as alice and bob, alice
// starts a DM, they exchange messages, each sees the other typing, alice sees bob's read
// receipt, bob catches up after a reconnect, and alice's page is saved as a screenshot.
//
// Env: CHAT_SERVER_BIN (default target/debug/chat-server), CHROMIUM (default /usr/bin/chromium),
// SCREENSHOT (default target/browser-test/demo.png; scripts/screenshot.sh writes docs/demo.png).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { chromium } from 'playwright-core';
import { startServer } from './server.mjs';

const ROOT = new URL('../../', import.meta.url);
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const SCREENSHOT = process.env.SCREENSHOT ?? new URL('target/browser-test/demo.png', ROOT).pathname;
const WAIT = { timeout: 10_000 };

let server;
let browser;
const problems = []; // page errors and console errors, from every page

before(async () => {
  server = await startServer({ args: ['--demo'] });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function openAs(name) {
  // One context per user: separate storage, like two people on two machines.
  const context = await browser.newContext({ viewport: { width: 1120, height: 700 }, deviceScaleFactor: 1, colorScheme: 'light' });
  const page = await context.newPage();
  page.on('pageerror', (error) => problems.push(`${name}: page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`${name}: console error: ${message.text()}`);
  });
  await page.goto(server.url + '/');
  await page.getByText('no real authentication').waitFor(WAIT);
  await page.getByLabel('Your name').fill(name);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#connection[data-state="online"]').waitFor(WAIT);
  return page;
}

const chatButton = (page, title) => page.getByRole('navigation', { name: 'Chats' }).getByRole('button', { name: new RegExp(`^${title}\\b`) });
const messages = (page) => page.getByRole('log', { name: 'Messages' });

async function startChat(page, members, title) {
  await page.getByLabel('New chat with').fill(members);
  if (title) await page.getByLabel('Group title').fill(title);
  await page.getByRole('button', { name: 'Start' }).click();
}

async function send(page, text) {
  await page.getByLabel('Message', { exact: true }).fill(text);
  await page.getByLabel('Message', { exact: true }).press('Enter');
  await messages(page).locator('.message.mine', { hasText: text }).locator('.status', { hasNotText: 'Sending' }).waitFor(WAIT);
}

test('the server serves the vendored socket.io-client bundle unchanged, and warns about demo mode', async () => {
  const vendored = readFileSync(new URL('host-native/web/socket.io.min.js', ROOT), 'utf8');
  const npm = readFileSync(new URL('node_modules/socket.io-client/dist/socket.io.min.js', import.meta.url), 'utf8');
  assert.equal(vendored, npm, 'host-native/web/socket.io.min.js differs from socket.io-client in package.json: copy it again');
  const served = await (await fetch(`${server.url}/assets/socket.io.min.js`)).text();
  assert.equal(served, npm);
  assert.match(server.log(), /DEMO MODE.*NO REAL AUTHENTICATION/);
  const refused = await fetch(`${server.url}/api/demo/token`, { method: 'POST', body: JSON.stringify({ name: 'no spaces allowed' }) });
  assert.equal(refused.status, 400);
});

test('two users chat in two browser pages: DM, live messages, typing, read receipt, catch-up', async () => {
  const alice = await openAs('alice');
  const bob = await openAs('bob');

  // A group first, so the list has more than one chat; then alice starts the DM.
  await startChat(alice, 'bob, carol', 'Weekend plans');
  await alice.locator('#chat-title', { hasText: 'Weekend plans' }).waitFor(WAIT);
  await startChat(alice, 'bob');
  await alice.locator('#chat-title', { hasText: /^bob$/ }).waitFor(WAIT);
  // bob learns of the DM live (chat:update), without reloading.
  await chatButton(bob, 'alice').waitFor(WAIT);

  // alice types: bob, not in the chat yet, sees it in his list.
  await alice.getByLabel('Message', { exact: true }).pressSequentially('Hi Bob', { delay: 20 });
  await chatButton(bob, 'alice').getByText('typing…').waitFor(WAIT);
  await alice.getByLabel('Message', { exact: true }).press('Enter');
  await messages(alice).getByText('Hi Bob').waitFor(WAIT);
  await send(alice, 'Are you free on Saturday?');

  // bob: unread badge, then opening the chat reads it, and alice sees "Read".
  await chatButton(bob, 'alice').locator('.badge', { hasText: '2 unread' }).waitFor(WAIT);
  await chatButton(bob, 'alice').click();
  await messages(bob).getByText('Are you free on Saturday?').waitFor(WAIT);
  await messages(alice).locator('.message.mine .status', { hasText: /^Read$/ }).waitFor(WAIT);
  await chatButton(bob, 'alice').locator('.badge').waitFor({ state: 'detached', ...WAIT });

  // bob answers; alice sees him typing first.
  await bob.getByLabel('Message', { exact: true }).pressSequentially('Yes! ', { delay: 30 });
  await alice.locator('#typing', { hasText: 'bob is typing…' }).waitFor(WAIT);
  // Presence: bob is online, in the DM's header and as a dot in the list (and alice on bob's).
  await alice.locator('#chat-subtitle', { hasText: /^online$/ }).waitFor(WAIT);
  await chatButton(alice, 'bob').locator('.presence.online').waitFor(WAIT);
  await bob.locator('#chat-subtitle', { hasText: /^online$/ }).waitFor(WAIT);
  await bob.getByLabel('Message', { exact: true }).pressSequentially('Hiking?', { delay: 20 });
  await bob.getByLabel('Message', { exact: true }).press('Enter');
  await messages(alice).getByText('Yes! Hiking?').waitFor(WAIT);
  await alice.locator('#typing', { hasText: /^$/ }).waitFor(WAIT); // a message ends the indicator

  // Catch-up: bob drops off, alice writes, bob comes back and gets it with messages:sync.
  await bob.evaluate(() => window.chatDemo.socket.disconnect());
  await bob.locator('#connection[data-state="offline"]').waitFor(WAIT);
  await send(alice, 'Great, 9am at the station');
  await bob.evaluate(() => window.chatDemo.socket.connect());
  await bob.locator('#connection[data-state="online"]').waitFor(WAIT);
  await messages(bob).getByText('Great, 9am at the station').waitFor(WAIT);
  assert.equal(await messages(bob).locator('.message').count(), 4, 'every message once, in order');
  assert.deepEqual(await messages(bob).locator('.body').allTextContents(),
    ['Hi Bob', 'Are you free on Saturday?', 'Yes! Hiking?', 'Great, 9am at the station']);
  await messages(alice).locator('.message.mine .status', { hasText: /^Read$/ }).waitFor(WAIT);

  // Something for the screenshot: an unread group message and bob typing in the DM.
  await chatButton(bob, 'Weekend plans').click();
  await send(bob, 'I will bring snacks');
  await chatButton(alice, 'Weekend plans').locator('.badge', { hasText: '1 unread' }).waitFor(WAIT);
  await chatButton(bob, 'alice').click();
  await bob.getByLabel('Message', { exact: true }).pressSequentially('See you', { delay: 20 });
  await alice.locator('#typing', { hasText: 'bob is typing…' }).waitFor(WAIT);
  await alice.getByLabel('Message', { exact: true }).blur();

  mkdirSync(dirname(SCREENSHOT), { recursive: true });
  await alice.screenshot({ path: SCREENSHOT });
  assert.deepEqual(problems, [], 'no page errors or console errors');
});

test('without demo mode the page signs in with a token from `chat-server token`, and has no token endpoint', async () => {
  const secret = `browser-test-${Date.now()}`;
  const plain = await startServer({ env: { JWT_SECRET: secret } });
  try {
    assert.equal((await fetch(`${plain.url}/api/demo/token`, { method: 'POST', body: '{"name":"alice"}' })).status, 404);
    const token = execFileSync(process.env.CHAT_SERVER_BIN ?? new URL('target/debug/chat-server', ROOT).pathname,
      ['token', 'dana'], { env: { ...process.env, JWT_SECRET: secret }, encoding: 'utf8' }).trim();
    const context = await browser.newContext();
    const page = await context.newPage();
    page.on('pageerror', (error) => problems.push(`dana: page error: ${error.message}`));
    await page.goto(plain.url + '/');
    assert.equal(await page.getByText('no real authentication').isVisible(), false);
    await page.getByLabel('Token').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('#connection[data-state="online"]').waitFor(WAIT);
    assert.equal(await page.locator('#me-name').textContent(), 'dana');
    await context.close();
    assert.deepEqual(problems, []);
  } finally {
    await plain.stop();
  }
});
