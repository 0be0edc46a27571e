// The edge host under wrangler's local dev server with the devtools inspector OFF, for
// bench/run.sh (EDGE_INSPECTOR=0). A diagnostic, not the reference: `wrangler dev` (what
// scripts/edge.sh runs) always attaches an inspector, and its InspectorProxyWorker sends
// every devtools event of the Worker (one per Durable Object request) to wrangler's node
// process, which formats it into its debug log file; that costs about as much CPU as the
// Worker itself. The CLI cannot turn the inspector off; wrangler's own API can
// (`unstable_startWorker`, dev.inspector = false). Same config, same bundle, same vars.
//
// Usage: WRANGLER_PKG=host-cloudflare/node_modules/wrangler node bench/edge-dev.mjs CONFIG PORT PERSIST_DIR
// Vars from the environment: JWT_SECRET, RATE_LIMIT_MESSAGES, RATE_LIMIT_WINDOW_MS, MAX_SOCKETS_PER_USER, EVENT_BURST, EVENT_RATE_PER_SEC.
import { createRequire } from "node:module";
import path from "node:path";

const [config, port, persist] = process.argv.slice(2);
if (!config || !port || !persist || !process.env.WRANGLER_PKG) {
  console.error("usage: WRANGLER_PKG=… node bench/edge-dev.mjs CONFIG PORT PERSIST_DIR");
  process.exit(64);
}
const require = createRequire(path.resolve(process.env.WRANGLER_PKG) + "/");
const { unstable_startWorker } = require("wrangler");

const bindings = {};
for (const name of ["JWT_SECRET", "RATE_LIMIT_MESSAGES", "RATE_LIMIT_WINDOW_MS", "MAX_SOCKETS_PER_USER", "EVENT_BURST", "EVENT_RATE_PER_SEC"]) {
  if (process.env[name]) bindings[name] = { type: "plain_text", value: process.env[name] };
}
const worker = await unstable_startWorker({
  config,
  bindings,
  dev: {
    server: { hostname: "127.0.0.1", port: Number(port) },
    inspector: false,
    persist,
    logLevel: "warn",
    watch: false,
  },
});
await worker.ready;
console.error(`edge-dev: serving on ${await worker.url} (inspector off)`);
const stop = async () => {
  await worker.dispose();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
