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
  /** Envelope ciphertext (layout in crypto/envelope-format.ts); the node cannot read it. */
  payload: Buffer;
  /** RSA-PSS signature by the table key over the 32 id bytes. */
  signature: Buffer;
  /** Hashcash cluster over the id (see pow/cluster.ts). */
  proof: Buffer;
}

export type { EntryJson, StoredEntryJson } from './json.js';
