#!/usr/bin/env node
/**
 * Builds the browser app into dist/web: index.html, app.css, app.js and worker.js, all served by
 * the node itself (src/http/routes/web.ts). No CDN, no fonts, no inline code: the page runs under
 * a CSP of script-src 'self'. Type-checks src/web first (tsconfig.web.json), since esbuild only strips types.
 *
 *   node scripts/build-web.mjs [--no-check]
 */
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'web');
const web = join(root, 'src', 'web');

if (!process.argv.includes('--no-check')) {
  execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.web.json')], { stdio: 'inherit' });
}

/** node-forge requires 'crypto' only when it thinks it runs in Node; the browser gets an empty module. */
const nodeShims = {
  name: 'node-shims',
  setup(b) {
    b.onResolve({ filter: /^(node:)?crypto$/ }, () => ({ path: join(web, 'shim', 'empty.ts') }));
  },
};

mkdirSync(out, { recursive: true });
await build({
  entryPoints: { app: join(web, 'app.ts'), worker: join(web, 'worker.ts') },
  outdir: out,
  bundle: true,
  format: 'iife',
  platform: 'browser',
  // Tor Browser follows Firefox ESR (115 and later).
  target: ['es2020', 'firefox115', 'chrome110'],
  minify: true,
  sourcemap: false,
  legalComments: 'none',
  plugins: [nodeShims],
  define: { 'process.env.NODE_DEBUG': 'false', global: 'globalThis' },
  logLevel: 'warning',
});
copyFileSync(join(web, 'index.html'), join(out, 'index.html'));
copyFileSync(join(web, 'app.css'), join(out, 'app.css'));

// The page must reach nothing but its own origin.
for (const file of ['index.html', 'app.css']) {
  const text = readFileSync(join(out, file), 'utf8');
  if (/(src|href)=["']?(https?:)?\/\//i.test(text) || /url\(\s*["']?(https?:)?\/\//i.test(text)) {
    throw new Error(`dist/web/${file} refers to another origin`);
  }
}
