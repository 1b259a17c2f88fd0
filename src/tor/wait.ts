/** Waiting on a condition with a deadline, for conditions that have no event to follow. */
import { setTimeout as delay } from 'node:timers/promises';
import { P2pdbError } from '../errors.js';

export interface WaitOptions {
  timeoutMs: number;
  /** Pause between checks; grows to 4x while the condition stays false. */
  intervalMs?: number;
  /** Used in the timeout message. */
  what: string;
}

/**
 * Calls `check` until it returns a value other than undefined/false and returns that value.
 * A throwing check ends the wait with its error. On timeout: tor_timeout, with the last
 * `check` note when it returned one through `note`.
 */
export async function waitFor<T>(check: (note: (why: string) => void) => Promise<T | undefined | false> | T | undefined | false, opts: WaitOptions): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  let interval = opts.intervalMs ?? 100;
  let lastNote = '';
  for (;;) {
    const result = await check((why) => (lastNote = why));
    if (result !== undefined && result !== false) return result;
    const left = deadline - Date.now();
    if (left <= 0) {
      throw new P2pdbError('tor_timeout', `timed out after ${opts.timeoutMs} ms ${opts.what}${lastNote ? ` (${lastNote})` : ''}`);
    }
    await delay(Math.min(interval, left));
    interval = Math.min(interval * 1.5, (opts.intervalMs ?? 100) * 4);
  }
}
