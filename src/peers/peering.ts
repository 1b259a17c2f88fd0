/**
 * The peering loop: says hello (POST /hello/ over tor) to known peers when they are due, a few
 * at a time, and records what it learns. A peer that answers with a valid hello signed by its
 * onion key becomes verified; the peers it lists become unverified candidates, which the loop
 * then greets itself (A knows B, B knows C → A learns C → A verifies C).
 *
 * Timing lives in the peer table (next_attempt, set from schedule.ts), so a restarted node or
 * a `p2pdb peers add` from the CLI is picked up at the next tick.
 */
import type http from 'node:http';
import { P2pdbError, fail, isP2pdbError } from '../errors.js';
import type { OnionIdentity } from '../identity/onion-key.js';
import { silentLogger, type Logger } from '../util/log.js';
import { checkSignedHello, makeSignedHello, normalizeOnion, type HelloMessage, type HelloSelf } from './hello.js';
import { PeerClient, peerErrorCode } from './peer-client.js';
import { readPeerClaims } from './peer-list.js';
import type { PeerTable } from '../store/peer-table.js';
import { DEFAULT_SCHEDULE, nextAttemptAt, withJitter, type Schedule } from './schedule.js';

export interface PeeringOptions {
  identity: OnionIdentity;
  peerStore: PeerTable;
  /** What our hellos say about us. */
  nodeInfo: HelloSelf;
  /** The SOCKS agent: every hello goes through tor. */
  agent: http.Agent;
  /** Onion addresses (or http://x.onion/ URLs) to start from; stored as 'config' peers. */
  bootstrapPeers?: readonly string[];
  log?: Logger;
  clock?: () => number;
  /** How often the loop looks for due peers (jittered ±20%). Default 30 s. */
  intervalMs?: number;
  schedule?: Partial<Schedule>;
  /** Hellos in flight at once. Default 3. */
  concurrency?: number;
  requestTimeoutMs?: number;
  /** In [0, 1); injectable for tests. */
  random?: () => number;
}

export interface HelloOutcome {
  onion: string;
  /** The peer's own signed hello, as checked. */
  hello: HelloMessage;
  /** Unverified candidates added from its peer list. */
  learned: number;
}

export interface Peering {
  /** Greets one peer now (adding it as a 'manual' peer if unknown); rejects with the failure's code. */
  sayHelloNow(onion: string): Promise<HelloOutcome>;
  /** Stops the loop, aborts hellos in flight and waits for them to end. */
  stop(): Promise<void>;
}

export const DEFAULT_PEERING_INTERVAL_MS = 30_000;
export const DEFAULT_PEERING_CONCURRENCY = 3;
const PRUNE_EVERY_MS = 60_000;

/** Reads bootstrap values; a bad one is a configuration error, not something to skip silently. */
export function parseBootstrapPeers(values: readonly string[]): string[] {
  return values.map((v) => normalizeOnion(v) ?? fail('config_invalid', `bootstrap peer ${JSON.stringify(v.slice(0, 100))} is not a v3 onion address`));
}

export async function startPeering(opts: PeeringOptions): Promise<Peering> {
  const { identity, peerStore } = opts;
  const self = identity.address;
  const log = opts.log ?? silentLogger;
  const clock = opts.clock ?? Date.now;
  const random = opts.random ?? Math.random;
  const schedule: Schedule = { ...DEFAULT_SCHEDULE, ...opts.schedule };
  const intervalMs = opts.intervalMs ?? DEFAULT_PEERING_INTERVAL_MS;
  const concurrency = Math.max(1, opts.concurrency ?? DEFAULT_PEERING_CONCURRENCY);
  const client = new PeerClient({ agent: opts.agent, ...(opts.requestTimeoutMs ? { timeoutMs: opts.requestTimeoutMs } : {}) });

  for (const onion of parseBootstrapPeers(opts.bootstrapPeers ?? [])) {
    if ((await peerStore.add(onion, 'config', clock())) === 'added') log.info('bootstrap peer added', { peer: onion });
  }

  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let pumping = false;
  let pumpAgain = false;
  let lastPrune: number | undefined;
  /** Hellos in flight, loop and sayHelloNow alike, so stop() can abort and await them. */
  const inFlight = new Map<string, { abort: AbortController; done: Promise<unknown> }>();
  /** Peers the loop has just greeted, until when: guards against a hot loop if the store cannot record an outcome. */
  const cooldown = new Map<string, number>();

  async function greet(onion: string, signal: AbortSignal): Promise<HelloOutcome> {
    const signed = makeSignedHello(identity, onion, opts.nodeInfo, clock());
    let answer: Record<string, unknown>;
    let theirs: HelloMessage;
    try {
      answer = await client.postHello(onion, signed, signal);
      try {
        theirs = checkSignedHello({ hello: answer.hello, signature: answer.signature }, { self, now: clock() });
      } catch (err) {
        throw new P2pdbError('peer_bad_answer', `${onion} answered without a valid hello: ${isP2pdbError(err) ? `${err.code}: ${err.message}` : String(err)}`);
      }
      // Over tor the onion authenticates the callee already; a hello signed by another key is a broken peer.
      if (theirs.onion !== onion) fail('peer_bad_answer', `${onion} answered with a hello from ${theirs.onion}`);
    } catch (err) {
      if (!stopped) {
        const now = clock();
        const failures = await peerStore.recordFailure(onion, now, (n) => nextAttemptAt(now, n, schedule, random)).catch((dbErr: Error) => {
          log.warn('could not record a failed hello', { peer: onion, error: dbErr.message });
          return undefined;
        });
        log.debug('hello failed', { peer: onion, code: peerErrorCode(err), failures, error: (err as Error).message });
      }
      throw err;
    }
    const now = clock();
    const before = await peerStore.get(onion);
    await peerStore.recordContact(theirs, now, nextAttemptAt(now, 0, schedule, random));
    if (!before?.verified) log.info('peer verified', { peer: onion });
    const claims = readPeerClaims(answer.peers, new Set([self, onion]));
    const learned = claims.length > 0 ? await peerStore.addCandidates(claims, now) : 0;
    if (learned > 0) log.info('peers learned', { from: onion, count: learned });
    return { onion, hello: theirs, learned };
  }

  function track(onion: string, run: (signal: AbortSignal) => Promise<HelloOutcome>): Promise<HelloOutcome> {
    const abort = new AbortController();
    // sayHelloNow may overlap a loop hello to the same peer; key each run separately.
    const key = inFlight.has(onion) ? `${onion}#${Math.random()}` : onion;
    // Removed before anyone chained on `done` runs, so a pump that follows sees the free slot.
    const done = run(abort.signal).finally(() => inFlight.delete(key));
    inFlight.set(key, { abort, done: done.catch(() => {}) });
    return done;
  }

  /** Loop work that touches the store (ticks, pumps), so stop() can wait for it before the store closes. */
  const busy = new Set<Promise<unknown>>();
  function background<T>(p: Promise<T>): Promise<T> {
    busy.add(p);
    void p.finally(() => busy.delete(p)).catch(() => {});
    return p;
  }

  /** Fills free slots with due peers; re-runs when asked to while it was busy. */
  function pump(): Promise<void> {
    return background(pumpOnce());
  }

  async function pumpOnce(): Promise<void> {
    if (pumping) {
      pumpAgain = true;
      return;
    }
    pumping = true;
    try {
      do {
        pumpAgain = false;
        const free = concurrency - inFlight.size;
        if (stopped || free <= 0) break;
        const now = clock();
        for (const [onion, until] of cooldown) if (until <= now) cooldown.delete(onion);
        const due = await peerStore.due(now, free, new Set([...inFlight.keys(), ...cooldown.keys()]));
        for (const peer of due) {
          if (stopped) break;
          void track(peer.onion, (signal) => greet(peer.onion, signal))
            .catch(() => {}) // recorded and logged by greet
            .then(() => {
              // Even if recording the outcome failed (so the peer still looks due), not again this round.
              cooldown.set(peer.onion, clock() + intervalMs);
              // A finished hello frees a slot; new candidates may be due at once.
              return stopped ? undefined : pump();
            })
            .catch((err: Error) => log.warn('peering pump failed', { error: err.message }));
        }
      } while (pumpAgain && !stopped);
    } finally {
      pumping = false;
    }
  }

  function tick(): Promise<void> {
    return background(tickOnce());
  }

  async function tickOnce(): Promise<void> {
    try {
      const now = clock();
      // Ageing works in days: once a minute is plenty, and spares the file a write lock per tick.
      if (lastPrune === undefined || now - lastPrune >= PRUNE_EVERY_MS) {
        lastPrune = now;
        const dropped = await peerStore.prune(now);
        if (dropped > 0) log.info('stale peers dropped', { count: dropped });
      }
      await pump();
    } catch (err) {
      log.warn('peering round failed', { error: (err as Error).message });
    } finally {
      if (!stopped) {
        timer = setTimeout(() => void tick(), withJitter(intervalMs, 0.2, random));
        timer.unref();
      }
    }
  }

  void tick();

  return {
    async sayHelloNow(value: string): Promise<HelloOutcome> {
      if (stopped) fail('internal', 'peering has stopped');
      const onion = normalizeOnion(value) ?? fail('malformed', `not a v3 onion address: ${value.slice(0, 100)}`);
      if (onion === self) fail('hello_self', 'a node does not say hello to itself');
      await peerStore.add(onion, 'manual', clock());
      return track(onion, (signal) => greet(onion, signal));
    },
    async stop(): Promise<void> {
      stopped = true;
      clearTimeout(timer);
      for (const { abort } of inFlight.values()) abort.abort(new P2pdbError('internal', 'peering stopped'));
      await Promise.all([...inFlight.values()].map((e) => e.done));
      await Promise.allSettled([...busy]);
    },
  };
}
