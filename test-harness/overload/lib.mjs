// Shared by the overload scripts: start a chat-server, sign tokens, connect clients, read
// the server's memory, summarise latencies.

import { spawn } from 'node:child_process';
import { createHmac, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const require = createRequire(new URL('../conformance/package.json', import.meta.url));
export const { io } = require('socket.io-client');

export const BIN = process.env.CHAT_SERVER_BIN ?? new URL('../../target/release/chat-server', import.meta.url).pathname;
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const b64 = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

export function tokenFor(secret, sub) {
  const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub, exp: Math.floor(Date.now() / 1000) + 3600 })}`;
  return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
}

/// Starts chat-server on a random port with a fresh SQLite data dir (or DATABASE_URL).
export async function startServer(extraEnv = {}) {
  const secret = `overload-${randomUUID()}`;
  const port = 41000 + Math.floor(Math.random() * 8000);
  const url = `http://127.0.0.1:${port}`;
  const dataDir = mkdtempSync(join(tmpdir(), 'chat-overload-'));
  const env = { ...process.env, JWT_SECRET: secret, BIND: `127.0.0.1:${port}`, CHAT_DATA_DIR: dataDir,
    RUST_LOG: process.env.RUST_LOG ?? 'error', ...extraEnv };
  const proc = spawn(BIN, ['serve'], { env, stdio: ['ignore', 'inherit', 'inherit'] });
  for (let i = 0; i < 300; i++) {
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch { /* not up yet */ }
    await sleep(50);
  }
  const token = (sub) => tokenFor(secret, sub);
  return {
    proc, url, port, secret, token,
    rssKb: () => rssKb(proc.pid),
    async http(user, method, path, body) {
      const res = await fetch(`${url}${path}`, { method, headers: { authorization: `Bearer ${token(user)}`, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body) });
      return { status: res.status, body: await res.json() };
    },
    async metric(name) {
      const text = await (await fetch(`${url}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith(`${name} `));
      return line ? Number(line.split(' ')[1]) : NaN;
    },
    connect(user, opts = {}) {
      return new Promise((resolve, reject) => {
        const s = io(url, { auth: { token: token(user), autoJoin: true }, transports: ['websocket'], reconnection: false, forceNew: true, ...opts });
        s.once('connect', () => resolve(s));
        s.once('connect_error', (e) => { s.close(); reject(e); });
      });
    },
    stop() {
      if (proc.exitCode === null) proc.kill('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export function rssKb(pid) {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
    return Number(line.split(/\s+/)[1]);
  } catch {
    return NaN;
  }
}

export function percentile(values, p) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

export function summary(values) {
  const r = (x) => Math.round(x * 10) / 10;
  return { n: values.length, p50: r(percentile(values, 50)), p99: r(percentile(values, 99)), max: r(Math.max(...values)) };
}
