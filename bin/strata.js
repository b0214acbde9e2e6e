#!/usr/bin/env node
// The strata command. The TypeScript is compiled to dist/ by `npm run build`
// (npm start / npm test do it for you).
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const main = join(root, 'dist', 'cli', 'main.js');
if (!existsSync(main)) {
  process.stderr.write('strata: not built yet; run `npm run build` (or `npm start` / `npm test`, which build first)\n');
  process.exit(2);
}
const { run } = await import(pathToFileURL(main).href);
process.exitCode = await run(process.argv.slice(2));
