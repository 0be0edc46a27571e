// The attacker of flood.mjs, in its own process so that its work does not slow the
// measuring process: TOTAL Socket.IO handshakes with forged tokens, CONCURRENCY at a time.
// Prints one JSON line: { handshakes, refused, other, ms }.

import { createRequire } from 'node:module';

const require = createRequire(new URL('../conformance/package.json', import.meta.url));
const { io } = require('socket.io-client');

const [url, total, concurrency] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
// Well-formed, signed with the wrong key: the server must verify it to refuse it.
const forged = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJtYWxsb3J5IiwiZXhwIjo0MTAyNDQ0ODAwfQ.c2lnbmVkLXdpdGgtdGhlLXdyb25nLWtleS0xMjM0NTY3ODkw';

let started = 0;
const counts = { handshakes: 0, refused: 0, other: 0 };
function one() {
  return new Promise((resolve) => {
    const s = io(url, { auth: { token: forged }, transports: ['websocket'], reconnection: false, forceNew: true, timeout: 20000 });
    s.once('connect', () => { counts.other++; s.close(); resolve(); });
    s.once('connect_error', (e) => { if (e.message === 'UNAUTHORIZED') counts.refused++; else counts.other++; s.close(); resolve(); });
  });
}
const t0 = Date.now();
await Promise.all(Array.from({ length: concurrency }, async () => {
  while (started < total) {
    started++;
    await one();
    counts.handshakes++;
  }
}));
console.log(JSON.stringify({ ...counts, ms: Date.now() - t0 }));
process.exit(0);
