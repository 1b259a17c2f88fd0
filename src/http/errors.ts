/** Turns every failure into `{ error: { code, message } }` with the code's status; nothing else leaks. */
import type Koa from 'koa';
import { isP2pdbError } from '../errors.js';
import type { Logger } from '../util/log.js';

export function errorMiddleware(log: Logger): Koa.Middleware {
  return async (ctx, next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        ctx.status = 404;
        ctx.body = { error: { code: 'not_found', message: `no route for ${ctx.method} ${ctx.path}` } };
      }
    } catch (e) {
      if (isP2pdbError(e)) {
        ctx.status = e.status;
        ctx.body = { error: e.toJSON() };
        return;
      }
      const status = (e as { status?: number }).status;
      if (status === 405 || status === 501) {
        ctx.status = 405;
        ctx.body = { error: { code: 'method_not_allowed', message: `${ctx.method} is not allowed on ${ctx.path}` } };
        return;
      }
      log.error('request failed', { method: ctx.method, path: ctx.path, error: (e as Error).message });
      ctx.status = 500;
      ctx.body = { error: { code: 'internal', message: 'internal error' } };
    }
  };
}

/** Headers for a node that serves privacy tools: no caching, no sniffing, no referrers. */
export function hardeningHeaders(): Koa.Middleware {
  return async (ctx, next) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('Referrer-Policy', 'no-referrer');
    ctx.set('X-Frame-Options', 'DENY');
    await next();
  };
}
