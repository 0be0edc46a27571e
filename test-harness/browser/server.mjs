// Starts the native host (target/debug/chat-server) for a test: a free port on 127.0.0.1, a
// fresh temporary data directory (SQLite), default limits, and nothing inherited from the
// caller's environment that could change its behaviour. Used by the browser test and the
// docs/client.md samples test.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BIN = process.env.CHAT_SERVER_BIN ?? new URL('../../target/debug/chat-server', import.meta.url).pathname;
const SETTINGS = ['DATABASE_URL', 'JWT_SECRET', 'CHAT_NAMESPACE', 'CHAT_DEMO', 'BIND', 'CHAT_DATA_DIR', 'MAX_SOCKETS_PER_USER',
  'RATE_LIMIT_MESSAGES', 'RATE_LIMIT_WINDOW_MS', 'TYPING_TIMEOUT_MS', 'PRESENCE_THROTTLE_MS', 'MAX_PAYLOAD_BYTES', 'MAX_GROUP_MEMBERS',
  'EVENT_BURST', 'EVENT_RATE_PER_SEC'];

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/** `{ url, log(), stop() }` of a running chat-server; `args` are extra CLI arguments (e.g. `--demo`). */
export async function startServer({ args = [], env = {} } = {}) {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'chat-test-'));
  const childEnv = { ...process.env };
  for (const name of SETTINGS) delete childEnv[name];
  Object.assign(childEnv, { RUST_LOG: 'warn', ...env, BIND: `127.0.0.1:${port}`, CHAT_DATA_DIR: dataDir });
  const child = spawn(BIN, ['serve', ...args], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk) => { output += chunk; });
  child.stderr.on('data', (chunk) => { output += chunk; });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  // A test that crashes must not leave a server behind.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  child.once('error', (error) => { output += `\nspawn ${BIN}: ${error.message}\n`; });
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    process.off('exit', killOnExit);
    rmSync(dataDir, { recursive: true, force: true });
  };
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) break;
    try {
      if ((await fetch(`${url}/healthz`)).ok) return { url, log: () => output, stop };
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 50));
  }
  await stop();
  throw new Error(`chat-server (${BIN}) did not start on ${url}; its output:\n${output}`);
}
