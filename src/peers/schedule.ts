/**
 * When to say hello to a peer again, pure: healthy peers are refreshed every `refreshMs`,
 * failing ones back off exponentially; both with jitter so that nodes started together do not
 * call each other in lock-step.
 */

export interface Schedule {
  /** A reachable peer is greeted again after this long. */
  refreshMs: number;
  /** The first retry after a failure. */
  retryBaseMs: number;
  /** Backoff stops growing here. */
  maxBackoffMs: number;
  /** ±fraction applied to every delay (0.2 = ±20%). */
  jitter: number;
}

export const DEFAULT_SCHEDULE: Schedule = {
  refreshMs: 10 * 60 * 1000,
  retryBaseMs: 30 * 1000,
  maxBackoffMs: 6 * 60 * 60 * 1000,
  jitter: 0.2,
};

/** Delay before the next attempt after `failures` consecutive failures (0: a success), before jitter. */
export function baseDelayMs(failures: number, s: Schedule): number {
  if (failures <= 0) return s.refreshMs;
  // 2^(failures-1) overflows nothing: the exponent is capped long before doubles get imprecise.
  const exp = Math.min(failures - 1, 40);
  return Math.min(s.maxBackoffMs, s.retryBaseMs * 2 ** exp);
}

/** `random` in [0, 1); returns the jittered delay. */
export function withJitter(delayMs: number, jitter: number, random: () => number): number {
  return Math.max(0, Math.round(delayMs * (1 - jitter + 2 * jitter * random())));
}

/** When the next hello is due, given the outcome just recorded. */
export function nextAttemptAt(now: number, failures: number, s: Schedule, random: () => number): number {
  return now + withJitter(baseDelayMs(failures, s), s.jitter, random);
}
