/**
 * The JSON wire forms (docs/PROTOCOL.md §5) as types only, without Buffer, so that the browser
 * client (src/client/browser-*.ts, checked with no Node types) shares them with the node.
 */
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
