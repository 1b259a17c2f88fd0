import { readFileSync } from 'node:fs';

/** The version in package.json, found from src/ (tests) or dist/src/ (the build). */
function packageVersion(): string {
  for (const rel of ['../../../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'p2pdb' && pkg.version) return pkg.version;
    } catch {
      /* try the next location */
    }
  }
  return '0.0.0';
}

export const VERSION = packageVersion();
export const SOFTWARE = `p2pdb/${VERSION}`;
