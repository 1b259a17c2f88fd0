/**
 * Peer lists, pure: which peers a /hello/ answer shows, the ?tables= filter, and reading the
 * peer list another node sent (untrusted claims: kept only as unverified candidates).
 */
import { fail } from '../errors.js';
import type { PeerSummaryJson } from '../entry/json.js';
import { mirrors, type TableSet } from '../entry/table-policy.js';
import { checkTables, isOnionAddress, MAX_POW_BITS } from './hello.js';

/** Most peers one /hello/ answer lists, and most claims taken from one answer. */
export const MAX_LISTED_PEERS = 100;
/** Most fingerprints in ?tables= (the query string shares Node's 16 KiB header limit). */
export const MAX_QUERY_TABLES = 200;

/** One item of the `peers` list in a /hello/ answer. */
export type PeerSummary = PeerSummaryJson;

/** A peer named in someone else's list: nothing in it is verified. */
export interface PeerClaim {
  onion: string;
  tables: TableSet | null;
  pow_bits: number | null;
}

/** ?tables=fp,fp → sorted unique fingerprints; undefined when absent; bad_request when malformed. */
export function parseTablesQuery(value: string | string[] | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  if (Array.isArray(value)) fail('bad_request', 'tables may be given once');
  const items = value.split(',').map((s) => s.trim().toLowerCase());
  if (items.length > MAX_QUERY_TABLES) fail('bad_request', `tables holds at most ${MAX_QUERY_TABLES} fingerprints`);
  for (const t of items) {
    if (!/^[0-9a-f]{64}$/.test(t)) fail('bad_request', 'tables must be table fingerprints (64 hex characters) separated by commas');
  }
  return [...new Set(items)].sort();
}

/** A peer that mirrors '*' carries every table; otherwise it must list each wanted one. */
export function carriesTables(tables: TableSet | null, wanted: readonly string[]): boolean {
  if (tables === null) return wanted.length === 0;
  return wanted.every((t) => mirrors(tables, t));
}

/** The peers to show: those carrying every wanted table, most recently seen first, at most `limit`. */
export function selectPeers(peers: readonly PeerSummary[], wanted: readonly string[] | undefined, limit = MAX_LISTED_PEERS): PeerSummary[] {
  return peers
    .filter((p) => !wanted || carriesTables(p.tables, wanted))
    .sort((a, b) => b.last_seen - a.last_seen || (a.onion < b.onion ? -1 : 1))
    .slice(0, limit);
}

/**
 * The claims worth keeping from another node's `peers` list: well-formed items only (the rest
 * are skipped, not fatal), minus `exclude` (ourselves, the sender), deduplicated, at most `max`.
 */
export function readPeerClaims(value: unknown, exclude: ReadonlySet<string>, max = MAX_LISTED_PEERS): PeerClaim[] {
  if (!Array.isArray(value)) return [];
  const out = new Map<string, PeerClaim>();
  for (const item of value.slice(0, max)) {
    if (typeof item !== 'object' || item === null) continue;
    const { onion, tables, pow_bits: powBits } = item as Record<string, unknown>;
    if (!isOnionAddress(onion) || exclude.has(onion) || out.has(onion)) continue;
    let claimedTables: TableSet | null = null;
    try {
      claimedTables = checkTables(tables);
    } catch {
      claimedTables = null;
    }
    const pow = Number.isInteger(powBits) && (powBits as number) >= 0 && (powBits as number) <= MAX_POW_BITS ? (powBits as number) : null;
    out.set(onion, { onion, tables: claimedTables, pow_bits: pow });
  }
  return [...out.values()];
}
