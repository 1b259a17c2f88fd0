import Router from '@koa/router';
import type { Ingestor } from '../../ingest/ingest.js';
import { fromHex } from '../../util/bytes.js';
import { bodyKind, readBody } from '../body.js';

export interface PutLimits {
  maxBodyBytes: number;
  maxBatchEntries: number;
  maxPayloadBytes: number;
}

/** A single entry body needs room for its payload in base64 plus the other fields. */
export function singleBodyLimit(maxPayloadBytes: number): number {
  return Math.ceil((maxPayloadBytes * 4) / 3) + 8 * 1024;
}

export function putRoutes(ingestor: Ingestor, limits: PutLimits): Router {
  const router = new Router();

  router.post('/put/:id', async (ctx) => {
    const urlId = fromHex(ctx.params.id, 32, 'id in the URL');
    const kind = bodyKind(ctx.get('content-type') || undefined);
    const raw = await readBody(ctx.req, Math.min(limits.maxBodyBytes, singleBodyLimit(limits.maxPayloadBytes)));
    const result = await ingestor.ingestOneBody(raw, kind, urlId);
    ctx.status = result.status === 'stored' ? 201 : 200;
    ctx.body = { status: result.status, id: result.id };
  });

  router.post('/put/', async (ctx) => {
    const kind = bodyKind(ctx.get('content-type') || undefined);
    const raw = await readBody(ctx.req, limits.maxBodyBytes);
    const results = await ingestor.ingestBody(raw, { kind, maxEntries: limits.maxBatchEntries });
    let stored = 0;
    let duplicates = 0;
    for (const r of results) {
      if ('status' in r) r.status === 'stored' ? stored++ : duplicates++;
    }
    ctx.body = { results, stored, duplicates, rejected: results.length - stored - duplicates };
  });

  return router;
}
