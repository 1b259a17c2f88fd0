import Router from '@koa/router';
import type { Ingestor } from '../../ingest/ingest.js';
import { fromHex } from '../../util/bytes.js';
import { maxEntryBytes } from '../../ingest/parse-body.js';
import { bodyKind, readBody } from '../body.js';

export interface PutLimits {
  maxBodyBytes: number;
  maxBatchEntries: number;
  maxPayloadBytes: number;
}

/**
 * The body bound of /put/:id: one entry at its largest in any documented encoding, however
 * escaped (maxEntryBytes), and never more than a batch may carry.
 */
export function singleBodyLimit(limits: Pick<PutLimits, 'maxBodyBytes' | 'maxPayloadBytes'>): number {
  return Math.min(limits.maxBodyBytes, maxEntryBytes(limits.maxPayloadBytes));
}

export function putRoutes(ingestor: Ingestor, limits: PutLimits): Router {
  const router = new Router();

  router.post('/put/:id', async (ctx) => {
    const urlId = fromHex(ctx.params.id, 32, 'id in the URL');
    const kind = bodyKind(ctx.get('content-type') || undefined);
    const raw = await readBody(ctx.req, singleBodyLimit(limits), 'one entry');
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
