/** Assembles a node from its parts: config → store → ingest → HTTP on loopback. */
import { mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { isLoopback, type NodeConfig } from '../config/config.js';
import { mirrors } from '../entry/table-policy.js';
import type { EntryPolicy } from '../entry/validate.js';
import { P2pdbError, fail } from '../errors.js';
import { loadOrCreateIdentity } from '../identity/identity-file.js';
import { createApp } from '../http/app.js';
import { answerClientErrorsInOrder } from '../http/client-error.js';
import type { SubscribeOptions } from '../http/routes/subscribe.js';
import { CheckPool } from '../ingest/check-pool.js';
import { Ingestor } from '../ingest/ingest.js';
import type { OnionIdentity } from '../identity/onion-key.js';
import { startPeering, type Peering } from '../peers/peering.js';
import { peerAgent } from '../tor/socks.js';
import { keepStatusFile } from './status-file.js';
import { openStore, parseDatabase } from '../store/open.js';
import type { PeerTable } from '../store/peer-table.js';
import type { PenaltyRule } from '../store/sync-state.js';
import type { Store } from '../store/types.js';
import { createLogger, type Logger } from '../util/log.js';
import { startOnionService, type OnionService, type OnionServiceOptions } from './onion-service.js';
import { watchClientKeys } from './client-watch.js';
import { readClients } from '../identity/client-auth.js';
import { torRuntimeFromConfig } from './tor-runtime.js';
import { SOFTWARE } from './version.js';
import { HELLO_PROTOCOL } from '../peers/hello.js';
import { PeerClient } from '../peers/peer-client.js';
import { OriginLog } from '../sync/origins.js';
import { startFreshPush, type FreshPush } from '../sync/push.js';
import { answerSync, Reconciliation, type SyncScope } from '../sync/reconcile.js';
import { startSyncScheduler, type SyncScheduler } from '../sync/scheduler.js';
import { SyncService } from '../sync/service.js';
import type { SessionTuning, SyncProgress, SyncReport } from '../sync/session.js';
import { SyncIndex } from '../sync/sync-index.js';
import { httpSyncTransport, onionRequester, type TransportTimeouts } from '../sync/transport.js';
import { startControlListener, type ControlListener } from './control.js';

export interface RunningNode {
  url: string;
  host: string;
  port: number;
  config: NodeConfig;
  store: Store;
  /** Present when config.tor is not 'off': the node's onion address, tor's SOCKS port, Tor's state. */
  onion?: OnionService;
  identity?: OnionIdentity;
  /** The peer table and the peering loop, when Tor is on. */
  peers?: PeerTable;
  peering?: Peering;
  /** Per-table fingerprint roots, kept current as entries are stored. */
  syncIndex: SyncIndex;
  /** Sync with peers (when Tor is on): run one now, listen to progress and outcomes; fresh-entry pushes. */
  sync?: {
    syncNow(onion: string, opts?: { onProgress?(p: SyncProgress): void; signal?: AbortSignal }): Promise<SyncReport>;
    service: SyncService;
    push: FreshPush;
  };
  /** The local control listener (127.0.0.1, bearer token; also in DATA/status.json), when Tor is on. */
  control?: { url: string; token: string };
  close(): Promise<void>;
}

export interface StartNodeOptions {
  log?: Logger;
  now?: () => number;
  /** Verification worker threads; default one per core but one. */
  verifyThreads?: number;
  /** Tuning of the onion service's bootstrap deadline and reconnect backoff (tests shorten them). */
  onion?: Pick<OnionServiceOptions, 'bootstrapDeadlineMs' | 'retryMinMs' | 'retryMaxMs' | 'selfCheck'>;
  /** Limits of GET /subscribe/ (tests shrink them). */
  subscribe?: Partial<SubscribeOptions>;
  /** Sync tuning (tests shrink pages; defaults in src/sync/session.ts, transport.ts, penalties.ts). */
  sync?: { tuning?: Partial<SessionTuning>; timeouts?: TransportTimeouts; penaltyRule?: PenaltyRule };
  /** How long start-up waits for the sync index before serving without it (default 1 s: a snapshot loads within it; a rebuild does not hold up puts and reads). */
  syncIndexWaitMs?: number;
  /** Test seam: holds the sync index's load (after it subscribed, before it reads the store). */
  syncIndexHold?: () => Promise<void>;
}

export function policyFromConfig(config: NodeConfig): EntryPolicy {
  return {
    allowedTables: config.allowedTables,
    powBits: config.powBits,
    maxPayloadBytes: config.maxPayloadBytes,
    maxFutureSkewMs: config.maxFutureSkewMs,
  };
}

/** Where the node's data lives: config.database, else SQLite in the data directory. */
export function databaseOf(config: NodeConfig) {
  return parseDatabase(config.database, config.dataDir);
}

function listen(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' ? new P2pdbError('config_invalid', `${host}:${port} is already in use (another node?): choose another port with --port or P2PDB_PORT`) : err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve(server.address() as AddressInfo);
    });
  });
}

export async function startNode(config: NodeConfig, opts: StartNodeOptions = {}): Promise<RunningNode> {
  const log = opts.log ?? createLogger();
  // Checked again here, not only in config parsing: nothing may open a non-loopback listener.
  if (!isLoopback(config.host)) fail('config_invalid', `refusing to listen on ${config.host}: loopback only`);
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  // Loaded before the app exists (/hello/ names the onion address) and before the store opens.
  const identity = config.tor === 'off' ? undefined : (await loadOrCreateIdentity(config.dataDir)).identity;
  const store = await openStore({ database: databaseOf(config), durability: config.durability });
  const policy = policyFromConfig(config);
  const checker = new CheckPool(policy, opts.verifyThreads);
  const ingestor = new Ingestor({ store, policy, checker, ...(opts.now ? { now: opts.now } : {}) });
  const peerStore = identity ? store.peers({ self: identity.address }) : undefined;
  // Fingerprints follow store.onStored from here on, so /sync/ never scans a table. Loading
  // from the snapshot takes under a second even at 10 M entries; a full rebuild (no snapshot,
  // or a bad one) reads every row, about a minute per 10 M, so the node does not wait past a
  // moment: it serves puts and reads, and /sync/ answers busy until the index is ready.
  const syncIndex = SyncIndex.begin({ store, dataDir: config.dataDir, log, ...(opts.syncIndexHold ? { beforeCatchUp: opts.syncIndexHold } : {}) });
  const closeStores = async () => {
    await ingestor.close();
    await syncIndex.close();
    await store.close();
  };
  const settled = await Promise.race([
    syncIndex.ready.then(() => true),
    delay(opts.syncIndexWaitMs ?? 1_000, undefined, { ref: false }).then(() => false),
  ]).catch(async (err: unknown) => {
    await closeStores();
    throw err;
  });
  if (!settled) {
    log.info('sync index still loading: serving puts and reads, sync answers busy until it is ready');
    syncIndex.ready.catch((err: unknown) => log.error('sync index failed to load: this node will not sync until restarted', { error: String(err) }));
  }
  const scope: SyncScope = {
    mirrors: (table) => mirrors(policy.allowedTables, table.toString('hex')),
  };
  const ranges = store.ranges;
  // Ends live subscriptions on close: server.close() waits for every open answer.
  const shutdown = new AbortController();
  const app = createApp({
    shutdown: shutdown.signal,
    ...(opts.subscribe ? { subscribe: opts.subscribe } : {}),
    config,
    store,
    ingestor,
    log,
    software: SOFTWARE,
    ...(opts.now ? { now: opts.now } : {}),
    ...(identity ? { identity } : {}),
    ...(peerStore ? { peerStore } : {}),
    sync: {
      server: { answer: (request) => answerSync(syncIndex.view, request, scope), tables: () => syncIndex.tables() },
      ranges,
      mirrors: scope.mirrors,
      protocol: HELLO_PROTOCOL,
    },
  });
  const server = createServer(app.callback());
  answerClientErrorsInOrder(server);
  // Slow or stalled clients must not pin sockets forever (a hidden service gets many).
  server.headersTimeout = 20_000;
  server.requestTimeout = 120_000;
  server.keepAliveTimeout = 10_000;
  let address: AddressInfo;
  try {
    address = await listen(server, config.port, config.host);
  } catch (e) {
    await closeStores();
    throw e;
  }
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  log.info('node listening', { url, tor: config.tor, pow_bits: config.powBits, tables: config.allowedTables === '*' ? '*' : config.allowedTables.length });

  let onion: OnionService | undefined;
  if (identity) {
    try {
      onion = await startOnionService({
        identity,
        runtime: torRuntimeFromConfig(config, log),
        targetPort: address.port,
        log,
        defences: { pow: config.onionPow, powQueueRate: config.onionPowQueueRate, powQueueBurst: config.onionPowQueueBurst, maxStreams: config.onionMaxStreams },
        // A private node (p2pdb clients add): DATA/identity/clients.json, read at every publish.
        clientKeys: async () => (await readClients(config.dataDir)).map((c) => c.publicKey),
        ...opts.onion,
      });
    } catch (e) {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await closeStores();
      throw e;
    }
  }
  // Sync: sessions over tor only (PeerClient: SOCKS agent, onion URLs), a background scheduler,
  // fresh-entry pushes, and the local control listener `p2pdb sync` talks to.
  let syncService: SyncService | undefined;
  let syncScheduler: SyncScheduler | undefined;
  let freshPush: FreshPush | undefined;
  let control: ControlListener | undefined;
  const syncAgent = onion ? peerAgent(onion.socksPort) : undefined;
  if (onion && peerStore && syncAgent) {
    const client = new PeerClient({ agent: syncAgent });
    const transportFor = (peer: string) => httpSyncTransport(onionRequester(client, peer), opts.sync?.timeouts);
    const origins = new OriginLog();
    syncService = new SyncService({
      peers: peerStore,
      syncState: store.syncState,
      transportFor,
      ingest: (raw, request, beforeStore) => ingestor.ingestPeerBody(raw, request, beforeStore),
      ranges,
      allowedTables: config.allowedTables,
      powBits: config.powBits,
      heldTables: () => syncIndex.tables().filter((t) => t.count > 0).map((t) => t.table),
      reconciler: (o) => new Reconciliation(syncIndex.view, { ...o, scope }),
      origins,
      log,
      ...(opts.now ? { clock: opts.now } : {}),
      ...(opts.sync?.penaltyRule ? { penaltyRule: opts.sync.penaltyRule } : {}),
      ...(opts.sync?.tuning ? { tuning: opts.sync.tuning } : {}),
    });
    freshPush = startFreshPush({ store, peers: peerStore, syncState: store.syncState, transportFor, origins, log, ...(opts.now ? { clock: opts.now } : {}) });
    control = await startControlListener(syncService, log);
  }
  const stopClientWatch = onion ? watchClientKeys({ dataDir: config.dataDir, onion, log }) : undefined;
  const stopStatusFile = onion
    ? keepStatusFile(config.dataDir, config.tor, onion, 500, control ? { url: control.url, token: control.token } : undefined)
    : undefined;
  // Peers are dialled only through this node's tor (SOCKS), so peering needs the onion service.
  const peering =
    identity && onion && peerStore
      ? await startPeering({
          identity,
          peerStore,
          nodeInfo: { tables: config.allowedTables, pow_bits: config.powBits, software: SOFTWARE },
          agent: peerAgent(onion.socksPort),
          bootstrapPeers: config.peers,
          log,
          intervalMs: config.peeringIntervalMs,
          ...(opts.now ? { clock: opts.now } : {}),
        })
      : undefined;
  let closing: Promise<void> | undefined;
  if (syncService) {
    // Sessions need the index: the scheduler starts once it is ready (at once, usually).
    const service = syncService;
    const startScheduler = () => {
      if (closing) return;
      syncScheduler = startSyncScheduler({ service, intervalMs: config.syncIntervalMs, log, ...(opts.now ? { clock: opts.now } : {}) });
    };
    if (syncIndex.isReady) startScheduler();
    else syncIndex.ready.then(startScheduler, () => undefined);
  }

  return {
    url,
    host: address.address,
    port: address.port,
    config,
    store,
    ...(onion ? { onion } : {}),
    ...(identity ? { identity } : {}),
    ...(peerStore ? { peers: peerStore } : {}),
    ...(peering ? { peering } : {}),
    syncIndex,
    ...(syncService && freshPush
      ? { sync: { syncNow: (peer: string, o?: Parameters<SyncService['syncNow']>[1]) => syncService!.syncNow(peer, o), service: syncService, push: freshPush } }
      : {}),
    ...(control ? { control: { url: control.url, token: control.token } } : {}),
    close() {
      closing ??= (async () => {
        // Sync first (it uses peers, the store and tor), then peering, as before.
        await freshPush?.stop();
        await syncService?.stop();
        await syncScheduler?.stop();
        await control?.close();
        syncAgent?.destroy();
        await peering?.stop();
        stopClientWatch?.();
        await onion?.stop();
        stopStatusFile?.(); // first, so peers stop being sent here before the server goes
        shutdown.abort();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
        });
        await closeStores();
      })();
      return closing;
    },
  };
}
