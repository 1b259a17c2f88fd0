/**
 * What a peer's misbehaviour in sync costs it, pure. Points add up in the peer table; at the
 * threshold the peer is banned for a while (not synced with, its pushes still go through the
 * same checks as anyone's puts). Honest disagreements cost nothing: an entry created slightly
 * in the future by our clock, or a proof below our bits from a peer that requires fewer.
 */
import type { PeerRecord, PeerTable } from '../store/peer-table.js';
import type { PenaltyRule, SyncStateTable } from '../store/sync-state.js';

export interface Offences {
  /** Entries that failed verification (signature, id, proof, shape, size). */
  invalid: number;
  /** Entries of a table we did not ask for, or that this node does not mirror. */
  wrongTable: number;
  /** Entries we did not ask for (an id not requested, outside the range's prefix). */
  unsolicited: number;
  /** A range that yielded fewer entries than the peer's count, or ids it claimed and did not serve. */
  lyingCount: number;
  /** Malformed sync messages, pages or cursors. */
  malformed: number;
}

export const NO_OFFENCES: Readonly<Offences> = { invalid: 0, wrongTable: 0, unsolicited: 0, lyingCount: 0, malformed: 0 };

export const POINTS: Readonly<Record<keyof Offences, number>> = {
  invalid: 10,
  wrongTable: 10,
  unsolicited: 10,
  lyingCount: 25,
  malformed: 50,
};

export const DEFAULT_PENALTY_RULE: PenaltyRule = { threshold: 100, banMs: 60 * 60 * 1000 };

export function emptyOffences(): Offences {
  return { ...NO_OFFENCES };
}

/** Points for a session's offences; capped at the threshold (one session can ban, not more). */
export function penaltyPoints(o: Offences, rule: PenaltyRule = DEFAULT_PENALTY_RULE): number {
  let total = 0;
  for (const k of Object.keys(POINTS) as (keyof Offences)[]) total += o[k] * POINTS[k];
  return Math.min(total, rule.threshold);
}

/** Ingest error codes that are the entry's fault (or the sender's), given whether the sender's proof bar is ours or higher. */
export function offenceOf(code: string, peerRequiresAtLeastOurBits: boolean): keyof Offences | null {
  if (code === 'created_in_future') return null;
  if (code === 'pow_insufficient') return peerRequiresAtLeastOurBits ? 'invalid' : null;
  if (code === 'table_not_allowed') return 'wrongTable';
  return 'invalid';
}

/** Verified peers whose tables are known and that no ban holds at `now`: who may be synced with. */
export async function unbannedPeers(peers: PeerTable, state: SyncStateTable, now: number): Promise<PeerRecord[]> {
  const [syncable, banned] = await Promise.all([peers.syncable(), state.banned(now)]);
  return syncable.filter((p) => !banned.has(p.onion));
}
