/**
 * Hashcash cluster v1, bound to an entry id.
 *
 * A proof is 16 nonces of 8 bytes (128 bytes). Token i hashes
 *   SHA-256( "p2pdb-pow" | id (32 bytes) | i (1 byte) | nonce_i (8 bytes) )   (50 bytes: one SHA-256 block)
 * and is worth the number of leading zero bits of that digest. The cluster is worth the
 * weakest token plus 4 (log2 of 16 tokens): 16 tokens of k bits cost about 2^(k+4) hashes
 * in all, with far less variance than one token of k+4 bits.
 */
import { hash } from 'node:crypto';

export const POW_TAG = Buffer.from('p2pdb-pow', 'ascii');
export const POW_TOKENS = 16;
export const POW_NONCE_BYTES = 8;
export const POW_PROOF_BYTES = POW_TOKENS * POW_NONCE_BYTES;
export const POW_CLUSTER_BONUS = 4;
export const POW_INPUT_BYTES = POW_TAG.length + 32 + 1 + POW_NONCE_BYTES;
export const DEFAULT_POW_BITS = 21;

/** Leading zero bits of a digest. */
export function leadingZeroBits(digest: Uint8Array): number {
  let bits = 0;
  for (const byte of digest) {
    if (byte === 0) {
      bits += 8;
      continue;
    }
    return bits + Math.clz32(byte) - 24;
  }
  return bits;
}

/** The 50-byte input of token `index`, nonce left zero; minting and checking fill it in place. */
export function tokenInput(id: Uint8Array, index: number): Buffer {
  const buf = Buffer.alloc(POW_INPUT_BYTES);
  POW_TAG.copy(buf, 0);
  buf.set(id, POW_TAG.length);
  buf[POW_TAG.length + 32] = index;
  return buf;
}

export const NONCE_OFFSET = POW_TAG.length + 33;

const sha256 =
  typeof hash === 'function'
    ? (b: Uint8Array) => hash('sha256', b, 'buffer') as unknown as Buffer
    : undefined;

/** Value of a proof for an id in bits, 0 if it is malformed. One pass of 16 hashes. */
export function proofValue(id: Uint8Array, proof: Uint8Array, digest = sha256!): number {
  if (id.length !== 32 || proof.length !== POW_PROOF_BYTES) return 0;
  const input = tokenInput(id, 0);
  let weakest = 256;
  for (let i = 0; i < POW_TOKENS; i++) {
    input[POW_TAG.length + 32] = i;
    input.set(proof.subarray(i * POW_NONCE_BYTES, (i + 1) * POW_NONCE_BYTES), NONCE_OFFSET);
    const bits = leadingZeroBits(digest(input));
    if (bits < weakest) weakest = bits;
  }
  return weakest + POW_CLUSTER_BONUS;
}

/** Bits every token needs so that the cluster is worth `clusterBits`. */
export function tokenBitsFor(clusterBits: number): number {
  return Math.max(0, clusterBits - POW_CLUSTER_BONUS);
}
