#!/usr/bin/env node
// The package's `p2pdb` bin: runs the compiled CLI, or says how to build it.
import { existsSync } from 'node:fs';

const main = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write(
    'p2pdb is not built yet: run `npm run build` (or `npm run bootstrap` to install and build) in the p2pdb directory.\n',
  );
  process.exit(1);
}
const { run } = await import(main.href);
process.exitCode = await run(process.argv.slice(2));
