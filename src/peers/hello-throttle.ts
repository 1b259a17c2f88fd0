/**
 * Bounds what unsolicited POST /hello/ can make a node write. A hello needs no proof of work
 * and onion keys cost nothing, while each recorded hello is a write on the node's SQLite file,
 * the same file (and single writer lock) entries are committed to: a flood of hellos would slow
 * puts. So:
 * - a peer already recorded with the same description within refreshIntervalMs is answered but
 *   not written again (a changed description is written at once);
 * - onions not in the peer table get in at newPeersPerMinute, with a burst of newPeerBurst;
 *   past that the hello is refused with rate_limited (429) and nothing is written.
 * Pure apart from the clock values passed in; memory is bounded by `remembered`.
 */
import { fail } from '../errors.js';

export interface HelloThrottleLimits {
  newPeersPerMinute: number;
  newPeerBurst: number;
  refreshIntervalMs: number;
  /** Onions whose last write is remembered (least recently used forgotten first). */
  remembered: number;
}

export const HELLO_THROTTLE_DEFAULTS: HelloThrottleLimits = {
  newPeersPerMinute: 30,
  newPeerBurst: 60,
  refreshIntervalMs: 60_000,
  remembered: 4096,
};

export class HelloThrottle {
  private readonly limits: HelloThrottleLimits;
  private tokens: number;
  private refilledAt: number | undefined;
  private readonly lastWrite = new Map<string, { at: number; description: string }>();

  constructor(limits: Partial<HelloThrottleLimits> = {}) {
    this.limits = { ...HELLO_THROTTLE_DEFAULTS, ...limits };
    this.tokens = this.limits.newPeerBurst;
  }

  /** True when this exact description from `onion` was written less than refreshIntervalMs ago. */
  recentlyWritten(onion: string, description: string, now: number): boolean {
    const last = this.lastWrite.get(onion);
    return last !== undefined && last.description === description && now - last.at >= 0 && now - last.at < this.limits.refreshIntervalMs;
  }

  /** Spends one new-peer token, or fails with rate_limited saying when the next one is due. */
  admitNewPeer(now: number): void {
    this.refill(now);
    if (this.tokens < 1) {
      const waitMs = Math.ceil(((1 - this.tokens) * 60_000) / this.limits.newPeersPerMinute);
      fail('rate_limited', `this node takes ${this.limits.newPeersPerMinute} new peers a minute; try again in ${Math.ceil(waitMs / 1000)} s`);
    }
    this.tokens -= 1;
  }

  written(onion: string, description: string, now: number): void {
    this.lastWrite.delete(onion); // re-inserted last: Map order is the LRU order
    this.lastWrite.set(onion, { at: now, description });
    if (this.lastWrite.size > this.limits.remembered) {
      this.lastWrite.delete(this.lastWrite.keys().next().value as string);
    }
  }

  private refill(now: number): void {
    if (this.refilledAt !== undefined && now > this.refilledAt) {
      this.tokens = Math.min(this.limits.newPeerBurst, this.tokens + ((now - this.refilledAt) * this.limits.newPeersPerMinute) / 60_000);
    }
    if (this.refilledAt === undefined || now > this.refilledAt) this.refilledAt = now;
  }
}
