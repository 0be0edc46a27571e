// `npm run test:some -- <node --test flags>`: like `npm test`, but with extra flags for
// Node's test runner placed before the test folder (Node 20 takes everything after the
// first path as another path), e.g.
//   npm run test:some -- --test-name-pattern="room:join"
import { spawnSync } from 'node:child_process';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const args = ['--test', '--test-concurrency=4', ...process.argv.slice(2), 'tests/'];
const result = spawnSync(process.execPath, args, { stdio: 'inherit', cwd: here });
process.exit(result.status ?? 1);
