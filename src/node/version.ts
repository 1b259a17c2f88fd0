import { readFileSync } from 'node:fs';

function packageVersion(): string {
  try {
    // dist/src/node/version.js → package.json three levels up; src/node/version.ts → two.
    for (const rel of ['../../../package.json', '../../package.json']) {
      try {
        const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
        if (pkg.name === 'p2pdb' && pkg.version) return pkg.version;
      } catch {
        /* try the next location */
      }
    }
  } catch {
    /* fall through */
  }
  return '0.0.0';
}

export const VERSION = packageVersion();
export const SOFTWARE = `p2pdb/${VERSION}`;
