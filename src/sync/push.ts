/**
 * Fresh entries spread fast: after each commit (store.onStored, debounced) the new entries are
 * POSTed to verified, unbanned, reachable peers that mirror their table, never back to the peer
 * they came from. One push in flight per peer; queues are bounded and drop on overflow: the
 * periodic sync catches up with whatever a push missed.
 */
import { entryToJson } from '../entry/wire.js';
import type { ValidEntry } from '../entry/validate.js';
import type { PeerTable } from '../store/peer-table.js';
import type { SyncStateTable } from '../store/sync-state.js';
import { unbannedPeers } from './penalties.js';
import type { EntryStore, StoredNotice } from '../store/types.js';
import { silentLogger, type Logger } from '../util/log.js';
import type { OriginLog } from './origins.js';
import { claims } from './shared-tables.js';
import type { SyncTransport } from './transport.js';

export interface FreshPushOptions {
  store: Pick<EntryStore, 'onStored'>;
  peers: PeerTable;
  syncState: SyncStateTable;
  transportFor(onion: string): SyncTransport;
  origins?: OriginLog;
  log?: Logger;
  clock?: () => number;
  debounceMs?: number;
  /** Entries waiting per peer (and in the shared intake) before new ones are dropped. */
  maxQueue?: number;
  /** Entries per POST /put/. */
  batch?: number;
}

export interface FreshPushStats {
  queued: number;
  pushed: number;
  dropped: number;
  failed: number;
}

export interface FreshPush {
  stats(): FreshPushStats;
  stop(): Promise<void>;
}

export function startFreshPush(opts: FreshPushOptions): FreshPush {
  const log = opts.log ?? silentLogger;
  const clock = opts.clock ?? Date.now;
  const debounceMs = opts.debounceMs ?? 200;
  const maxQueue = opts.maxQueue ?? 5000;
  const batch = opts.batch ?? 500;
  const stats: FreshPushStats = { queued: 0, pushed: 0, dropped: 0, failed: 0 };
  let intake: ValidEntry[] = [];
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const queues = new Map<string, ValidEntry[]>();
  const sending = new Map<string, Promise<void>>();
  const abort = new AbortController();
  let distributing: Promise<void> = Promise.resolve();

  const unsubscribe = opts.store.onStored((stored: readonly StoredNotice[]) => {
    if (stopped) return;
    for (const s of stored) {
      if (intake.length >= maxQueue) {
        stats.dropped++;
        continue;
      }
      intake.push(s.entry);
    }
    timer ??= setTimeout(() => {
      timer = undefined;
      distributing = distributing.then(distribute).catch((err: Error) => log.warn('fresh push failed', { error: err.message }));
    }, debounceMs);
  });

  async function distribute(): Promise<void> {
    const fresh = intake;
    intake = [];
    if (fresh.length === 0 || stopped) return;
    const peers = (await unbannedPeers(opts.peers, opts.syncState, clock())).filter((p) => p.failures < opts.peers.limits.failingAfter);
    for (const peer of peers) {
      const wanted = fresh.filter((v) => claims(peer.tables, v.tableFingerprint.toString('hex')) && opts.origins?.of(v.id) !== peer.onion);
      if (wanted.length === 0) continue;
      const queue = queues.get(peer.onion) ?? [];
      const room = Math.max(0, maxQueue - queue.length);
      queue.push(...wanted.slice(0, room));
      stats.dropped += wanted.length - Math.min(room, wanted.length);
      stats.queued += Math.min(room, wanted.length);
      queues.set(peer.onion, queue);
      if (!sending.has(peer.onion)) {
        const run = drain(peer.onion).finally(() => sending.delete(peer.onion));
        sending.set(peer.onion, run);
      }
    }
  }

  async function drain(onion: string): Promise<void> {
    const transport = opts.transportFor(onion);
    for (;;) {
      const queue = queues.get(onion);
      if (!queue || queue.length === 0 || stopped) {
        queues.delete(onion);
        return;
      }
      const items = queue.splice(0, batch);
      const body = Buffer.from(items.map((v) => JSON.stringify(entryToJson(v.entry, v.id))).join('\n') + '\n', 'utf8');
      try {
        await transport.put(body, abort.signal);
        stats.pushed += items.length;
      } catch (err) {
        // The peer is unreachable or refuses: drop its queue, the periodic sync catches up.
        stats.failed += items.length + queue.length;
        queues.delete(onion);
        log.debug('fresh push to a peer failed', { peer: onion, error: (err as Error).message });
        return;
      }
    }
  }

  return {
    stats: () => ({ ...stats }),
    async stop() {
      stopped = true;
      unsubscribe();
      clearTimeout(timer);
      abort.abort();
      await distributing;
      await Promise.allSettled([...sending.values()]);
    },
  };
}
