/**
 * Background sync: every verified, unbanned peer that shares tables with us is synced with
 * every `intervalMs` (jittered), a few at a time, backing off exponentially while it fails.
 * A peer seen for the first time is due at once (after a little jitter), so nodes that have
 * just met converge without waiting a whole interval. Timing is in memory: a restarted node
 * syncs with everyone soon after it starts, which is what a restarted node wants.
 */
import { silentLogger, type Logger } from '../util/log.js';
import { baseDelayMs, withJitter, type Schedule } from '../peers/schedule.js';
import type { SyncService } from './service.js';

export interface SyncSchedulerOptions {
  service: SyncService;
  /** 0: no periodic sync. */
  intervalMs: number;
  /** Sessions at once. Default 2. */
  concurrency?: number;
  /** How often the loop looks for due peers. Default 1 s (a query on the small peer table). */
  tickMs?: number;
  /** First retry after a failure and the cap of the backoff. */
  retryBaseMs?: number;
  maxBackoffMs?: number;
  log?: Logger;
  clock?: () => number;
  random?: () => number;
}

export interface SyncScheduler {
  stop(): Promise<void>;
}

interface PeerTiming {
  next: number;
  failures: number;
}

export function startSyncScheduler(opts: SyncSchedulerOptions): SyncScheduler {
  const log = opts.log ?? silentLogger;
  const clock = opts.clock ?? Date.now;
  const random = opts.random ?? Math.random;
  const concurrency = Math.max(1, opts.concurrency ?? 2);
  const tickMs = opts.tickMs ?? 1000;
  const schedule: Schedule = {
    refreshMs: opts.intervalMs,
    retryBaseMs: opts.retryBaseMs ?? 15_000,
    maxBackoffMs: opts.maxBackoffMs ?? 30 * 60 * 1000,
    jitter: 0.2,
  };
  const timing = new Map<string, PeerTiming>();
  const inFlight = new Set<Promise<unknown>>();
  const busyPeers = new Set<string>();
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let ticking: Promise<void> | undefined;

  async function tickOnce(): Promise<void> {
    const now = clock();
    const peers = await opts.service.candidates();
    const present = new Set(peers.map((p) => p.onion));
    for (const onion of timing.keys()) if (!present.has(onion)) timing.delete(onion);
    for (const peer of peers) {
      if (stopped || busyPeers.size >= concurrency) break;
      if (busyPeers.has(peer.onion) || opts.service.isRunning(peer.onion)) continue;
      let t = timing.get(peer.onion);
      if (!t) {
        // New peer: due within a second or two, spread so peers met together are not synced in lock-step.
        t = { next: now + Math.round(random() * Math.min(2000, opts.intervalMs)), failures: 0 };
        timing.set(peer.onion, t);
      }
      if (t.next > now) continue;
      const onion = peer.onion;
      const entry = t;
      busyPeers.add(onion);
      const run = opts.service
        .syncNow(onion)
        .then(
          () => {
            entry.failures = 0;
            entry.next = clock() + withJitter(schedule.refreshMs, schedule.jitter, random);
          },
          (err: Error) => {
            entry.failures++;
            entry.next = clock() + withJitter(baseDelayMs(entry.failures, schedule), schedule.jitter, random);
            log.debug('scheduled sync failed', { peer: onion, failures: entry.failures, error: err.message });
          },
        )
        .finally(() => {
          busyPeers.delete(onion);
          inFlight.delete(run);
        });
      inFlight.add(run);
    }
  }

  function tick(): void {
    ticking = tickOnce()
      .catch((err: Error) => log.warn('sync round failed', { error: err.message }))
      .finally(() => {
        if (!stopped) {
          timer = setTimeout(tick, withJitter(tickMs, 0.2, random));
          timer.unref();
        }
      });
  }

  if (opts.intervalMs > 0) tick();

  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await ticking;
      await Promise.allSettled([...inFlight]);
    },
  };
}
