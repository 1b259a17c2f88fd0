import Router from '@koa/router';
import type { NodeConfig } from '../../config/config.js';

export const PROTOCOL = 'p2pdb/1';

export interface HelloInfo {
  protocol: string;
  software: string;
  tables: '*' | string[];
  pow_bits: number;
  limits: {
    max_payload_bytes: number;
    max_body_bytes: number;
    max_batch_entries: number;
    max_future_skew_ms: number;
  };
}

export function helloInfo(config: NodeConfig, software: string): HelloInfo {
  return {
    protocol: PROTOCOL,
    software,
    tables: config.allowedTables,
    pow_bits: config.powBits,
    limits: {
      max_payload_bytes: config.maxPayloadBytes,
      max_body_bytes: config.maxBodyBytes,
      max_batch_entries: config.maxBatchEntries,
      max_future_skew_ms: config.maxFutureSkewMs,
    },
  };
}

export function helloRoutes(info: HelloInfo): Router {
  const router = new Router();
  router.get('/hello/', (ctx) => {
    ctx.body = info;
  });
  return router;
}
