/** The node's Koa application: a small core of middleware, then one router per concern. */
import Koa from 'koa';
import type { NodeConfig } from '../config/config.js';
import type { OnionIdentity } from '../identity/onion-key.js';
import type { PeerTable } from '../store/peer-table.js';
import type { Ingestor } from '../ingest/ingest.js';
import type { EntryStore } from '../store/types.js';
import type { Logger } from '../util/log.js';
import { errorMiddleware, hardeningHeaders } from './errors.js';
import { getRoutes } from './routes/get.js';
import { helloInfo, helloRoutes } from './routes/hello.js';
import { putRoutes } from './routes/put.js';
import { syncRoutes, type SyncRouteDeps } from './routes/sync.js';
import { webRoutes } from './routes/web.js';
import { subscribeRoutes, type SubscribeOptions } from './routes/subscribe.js';

export interface AppDeps {
  config: NodeConfig;
  store: EntryStore;
  ingestor: Ingestor;
  log: Logger;
  software: string;
  now?: () => number;
  /** The node's onion identity and peer table, when Tor is on. */
  identity?: OnionIdentity;
  peerStore?: PeerTable;
  /** The sync transport's routes (/sync/, /sync/fetch, /sync/range, /index/), wired by node.ts. */
  sync?: SyncRouteDeps;
  /** Limits of GET /subscribe/ (defaults in routes/subscribe.ts). */
  subscribe?: Partial<SubscribeOptions>;
  /** Aborted when the node shuts down, so long-lived answers (subscriptions) end. */
  shutdown?: AbortSignal;
}

export function createApp(deps: AppDeps): Koa {
  const app = new Koa();
  app.proxy = false;
  app.silent = true; // errors are logged by errorMiddleware, without request data
  app.use(errorMiddleware(deps.log));
  app.use(hardeningHeaders());
  for (const router of [
    helloRoutes({
      info: helloInfo(deps.config, deps.software, deps.identity?.address),
      identity: deps.identity ?? null,
      peerStore: deps.peerStore ?? null,
      ...(deps.now ? { clock: deps.now } : {}),
    }),
    putRoutes(deps.ingestor, deps.config),
    getRoutes(deps.store, deps.now),
    ...(deps.sync ? [syncRoutes(deps.sync)] : []),
    webRoutes(),
    subscribeRoutes({
      store: deps.store,
      log: deps.log,
      ...(deps.now ? { now: deps.now } : {}),
      ...(deps.subscribe ? { options: deps.subscribe } : {}),
      ...(deps.shutdown ? { shutdown: deps.shutdown } : {}),
    }).router,
  ]) {
    app.use(router.routes());
    app.use(router.allowedMethods({ throw: true }));
  }
  return app;
}
