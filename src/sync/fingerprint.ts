/**
 * Node fingerprint (docs/PROTOCOL.md §9.2): the first 16 bytes of
 * SHA-256( sum of the node's ids as 256-bit big-endian integers mod 2^256, as 32 bytes || LEB128(count) ).
 * A sum, not a XOR: XOR fingerprints are forgeable by linear algebra; hashing the sum with the
 * count keeps the fingerprint incremental (sums add) without exposing a linear structure.
 */
import { createHash } from 'node:crypto';
import { sumOfIds, sumToBytes } from './sum256.js';

export const FINGERPRINT_BYTES = 16;

export function leb128(n: number): Buffer {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError('leb128 takes a non-negative safe integer');
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

/** Fingerprint from a 32-byte big-endian sum and a count. */
export function fingerprintOf(sum32: Uint8Array, count: number): Buffer {
  return createHash('sha256').update(sum32).update(leb128(count)).digest().subarray(0, FINGERPRINT_BYTES);
}

/** Fingerprint of a sum kept as words (sum256.ts) at acc[off..]. */
export function fingerprintOfWords(acc: Uint32Array, off: number, count: number): Buffer {
  return fingerprintOf(sumToBytes(acc, off), count);
}

/** Fingerprint of a list of ids (tests, deep nodes). */
export function fingerprintOfIds(ids: readonly Uint8Array[]): Buffer {
  return fingerprintOf(sumOfIds(ids), ids.length);
}

export const EMPTY_FINGERPRINT = fingerprintOf(Buffer.alloc(32), 0);
