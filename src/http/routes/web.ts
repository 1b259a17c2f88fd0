/**
 * The browser app: GET / (index.html) and GET /app/<file> from dist/web, built by
 * scripts/build-web.mjs. A fixed list of files, read once and kept in memory: no path from a
 * request ever reaches the file system. Every answer carries a strict Content-Security-Policy
 * (the page may load and call only its own origin; WebAssembly for the proof-of-work kernel).
 */
import Router from '@koa/router';
import type Koa from 'koa';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const WEB_CSP = [
  "default-src 'none'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "worker-src 'self'",
  "connect-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const TYPES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'worker.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
};

/** dist/web, found from this module: dist/src/http/routes/web.js -> dist/web. */
export function defaultWebDir(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'web');
}

/** The built files, or undefined when the app was not built (the node still runs without it). */
export function loadWebFiles(dir = defaultWebDir()): Map<string, Buffer> | undefined {
  const files = new Map<string, Buffer>();
  try {
    for (const name of Object.keys(TYPES)) files.set(name, readFileSync(join(dir, name)));
  } catch {
    return undefined;
  }
  return files;
}

export function webRoutes(files: Map<string, Buffer> | undefined = loadWebFiles()): Router {
  const router = new Router();
  const serve = (name: string): Koa.Middleware => (ctx) => {
    const body = files?.get(name);
    if (!body) return; // not built: the usual 404 not_found
    ctx.set('Content-Security-Policy', WEB_CSP);
    ctx.set('Referrer-Policy', 'no-referrer');
    ctx.set('Cross-Origin-Opener-Policy', 'same-origin');
    ctx.set('Cross-Origin-Resource-Policy', 'same-origin');
    // index.html never cached (hardeningHeaders already says no-store for everything).
    ctx.set('Cache-Control', 'no-store');
    ctx.type = TYPES[name]!;
    ctx.body = body;
  };
  router.get('/', serve('index.html'));
  for (const name of Object.keys(TYPES)) {
    if (name !== 'index.html') router.get(`/app/${name}`, serve(name));
  }
  return router;
}
