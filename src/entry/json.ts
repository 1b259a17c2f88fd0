/**
 * The JSON wire forms (docs/PROTOCOL.md §5 entries, §6 the /hello/ answer) as types only,
 * without Buffer, so that the browser client (src/client/browser-*.ts, checked with no Node
 * types), the Node client and the node's routes share one declaration of each.
 */
import type { TableSet } from './table-policy.js';

/** JSON form on the wire: binary as padded base64, ids and fingerprints as lower-case hex. */
export interface EntryJson {
  v: number;
  id?: string;
  table: string;
  to: string;
  created_at: number;
  payload: string;
  signature: string;
  proof: string;
}

/** What a node returns from /get/: the entry plus where it sits locally. */
export interface StoredEntryJson extends EntryJson {
  id: string;
  seq: string;
  received_at: number;
}

/** The limits a node states in its /hello/ answer. */
export interface HelloLimitsJson {
  max_payload_bytes: number;
  max_body_bytes: number;
  max_batch_entries: number;
  max_future_skew_ms: number;
}

/** One item of the `peers` list in a /hello/ answer: a peer the node has verified. */
export interface PeerSummaryJson {
  onion: string;
  tables: TableSet;
  pow_bits: number;
  /** When the node last verified the peer (ms). */
  last_seen: number;
}

/** What GET /hello/ answers (POST /hello/ adds the node's signed hello to it). */
export interface HelloJson {
  protocol: string;
  /** The node's onion address, when it runs as an onion service. */
  onion?: string;
  software: string;
  tables: TableSet;
  pow_bits: number;
  limits: HelloLimitsJson;
  /** Verified peers the node knows (at most 100); absent from the node's own description. */
  peers?: PeerSummaryJson[];
}
