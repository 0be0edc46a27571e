// Connection flood: good users' connect time (io() to `connect`, a full WebSocket +
// Socket.IO handshake with a valid token) without, then during, a flood of handshakes
// with forged tokens from another process.
//
// Usage: node flood.mjs   (env: CHAT_SERVER_BIN, FLOOD_HANDSHAKES (5000),
// FLOOD_CONCURRENCY (200), GOOD_LANES (8), BASELINE_S (15))

import { spawn } from 'node:child_process';
import { sleep, startServer, summary } from './lib.mjs';

const FLOOD = Number(process.env.FLOOD_HANDSHAKES ?? 5000);
const CONCURRENCY = Number(process.env.FLOOD_CONCURRENCY ?? 200);
const LANES = Number(process.env.GOOD_LANES ?? 8);
const BASELINE_S = Number(process.env.BASELINE_S ?? 15);

const server = await startServer();
try {
  // Good users each belong to a chat, so that connecting loads something from storage.
  const good = Array.from({ length: LANES }, (_, i) => `good-${i}`);
  await server.http(good[0], 'POST', '/api/v1/chats', { kind: 'group', memberIds: good.slice(1), title: 'good' });

  async function measure(until) {
    const times = [];
    let failed = 0;
    await Promise.all(good.map(async (user) => {
      while (!until()) {
        const t = performance.now();
        try {
          const s = await server.connect(user, { timeout: 30000 });
          times.push(performance.now() - t);
          s.close();
        } catch { failed++; }
        await sleep(20);
      }
    }));
    return { ...summary(times), failed };
  }

  await measure(((end) => () => Date.now() > end)(Date.now() + 2000)); // warm up
  const rssBefore = server.rssKb();
  const baseline = await measure(((end) => () => Date.now() > end)(Date.now() + BASELINE_S * 1000));
  console.log(JSON.stringify({ phase: 'baseline', connectMs: baseline }));

  const worker = spawn(process.execPath, [new URL('./flood-worker.mjs', import.meta.url).pathname, server.url, String(FLOOD), String(CONCURRENCY)],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  let floodOut = '';
  worker.stdout.on('data', (d) => { floodOut += d; });
  let floodDone = false;
  let rssMax = 0;
  const rssTimer = setInterval(() => { rssMax = Math.max(rssMax, server.rssKb()); }, 500);
  worker.on('exit', () => { floodDone = true; });
  const during = await measure(() => floodDone);
  clearInterval(rssTimer);
  const flood = JSON.parse(floodOut.trim() || '{}');
  console.log(JSON.stringify({ phase: 'flood', connectMs: during, flood: { ...flood, perSecond: Math.round(flood.handshakes / (flood.ms / 1000)) } }));
  console.log(JSON.stringify({ rssKb: { before: rssBefore, maxDuringFlood: rssMax, after: server.rssKb() } }));
} finally {
  server.stop();
}
