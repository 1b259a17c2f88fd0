export const ENTRY_VERSION = 1;

/** An entry as it travels and is stored. Binary fields are raw bytes. */
export interface Entry {
  version: number;
  /** Canonical SPKI DER of the table's public key. */
  table: Buffer;
  /** SHA-256 fingerprint of the recipient's public key. */
  to: Buffer;
  /** Milliseconds since the Unix epoch, as claimed by the writer. */
  createdAt: number;
  /** Envelope ciphertext (see crypto/envelope.ts); the node cannot read it. */
  payload: Buffer;
  /** RSA-PSS signature by the table key over the 32 id bytes. */
  signature: Buffer;
  /** Hashcash cluster over the id (see pow/cluster.ts). */
  proof: Buffer;
}

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
