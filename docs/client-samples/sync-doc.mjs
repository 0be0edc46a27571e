// Rewrites each `<!-- sample: name.ts -->` block of docs/client.md from the file of that
// name here. check.test.mjs fails when they differ; `npm run sync-doc` makes them equal.
import { readFileSync, writeFileSync } from 'node:fs';

const guide = new URL('../client.md', import.meta.url);
const text = readFileSync(guide, 'utf8').replace(/<!-- sample: ([\w.-]+) -->\n```ts\n[\s\S]*?```\n/g,
  (_, name) => `<!-- sample: ${name} -->\n\`\`\`ts\n${readFileSync(new URL(name, import.meta.url), 'utf8')}\`\`\`\n`);
writeFileSync(guide, text);
