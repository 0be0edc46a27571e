// One JSON object per line on stdout; failures carry their correlationId so a client's
// report can be matched with the server's line.

const LEVELS = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };
let threshold = LEVELS.info;

export function setLogLevel(name) {
  threshold = LEVELS[name] ?? LEVELS.info;
}

function write(level, msg, fields) {
  if (LEVELS[level] < threshold) return;
  const line = JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields });
  process.stdout.write(`${line}\n`);
}

export const log = {
  debug: (msg, fields) => write('debug', msg, fields),
  info: (msg, fields) => write('info', msg, fields),
  warn: (msg, fields) => write('warn', msg, fields),
  error: (msg, fields) => write('error', msg, fields),
  /** Startup and shutdown lines, whatever the level (scripts read the port from "listening"). */
  always: (msg, fields) => process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), level: 'info', msg, ...fields })}\n`),
};
