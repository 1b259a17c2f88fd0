/**
 * The SHA-256 message block of a proof-of-work token, as 32-bit words, shared by both search
 * kernels. The layout follows cluster.ts (which uses node:crypto and Buffer, so it cannot be
 * imported from code meant for a Web Worker):
 *
 *   bytes 0..8    "p2pdb-pow"            W0..W2 (with id[0..2])
 *   bytes 9..40   id                     W2..W10
 *   byte  41      token index            W10
 *   bytes 42..49  nonce, big-endian      W10 (2 bytes), W11 (4), W12 (2)
 *   byte  50      0x80 padding           W12
 *   bytes 56..63  bit length 400         W14, W15
 *
 * A nonce is handled as a safe integer n = hi * 2^32 + lo, so
 *   W10 = base10 | hi >>> 16,   W11 = hi << 16 | lo >>> 16,   W12 = lo << 16 | 0x8000.
 * Only W12 changes between neighbouring nonces, which is what lets the kernels precompute
 * everything before round 12 once per 65,536 nonces.
 */
import { fail } from '../errors.js';

export const TOKEN_TAG = new TextEncoder().encode('p2pdb-pow');
export const TOKEN_NONCE_OFFSET = TOKEN_TAG.length + 33;
export const TOKEN_INPUT_BYTES = TOKEN_NONCE_OFFSET + 8;
/** Message words 0..10 that do not depend on the nonce (W10 without its nonce bits). */
export const TEMPLATE_WORDS = 11;
export const W12_PADDING = 0x8000;
export const W15_LENGTH = TOKEN_INPUT_BYTES * 8;
/** Two 32-bit words of the digest are checked: more than 64 bits per token is beyond any use. */
export const MAX_TOKEN_BITS = 64;

export const SHA256_IV = Uint32Array.of(
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
);

export const SHA256_K = Uint32Array.of(
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
);

/** Words W0..W10 of token `index` for `id` (W10 with the nonce bits zero). */
export function templateWords(id: Uint8Array, index: number): Uint32Array {
  if (id.length !== 32) fail('malformed', 'a proof-of-work id is 32 bytes');
  if (!Number.isInteger(index) || index < 0 || index > 255) fail('bad_request', 'token index must be a byte');
  const bytes = new Uint8Array(TEMPLATE_WORDS * 4);
  bytes.set(TOKEN_TAG, 0);
  bytes.set(id, TOKEN_TAG.length);
  bytes[TOKEN_TAG.length + 32] = index;
  const view = new DataView(bytes.buffer);
  const words = new Uint32Array(TEMPLATE_WORDS);
  for (let i = 0; i < TEMPLATE_WORDS; i++) words[i] = view.getUint32(i * 4, false);
  return words;
}

/**
 * Masks over digest words H0 and H1: a digest has `bits` leading zero bits exactly when
 * (H0 & m0) | (H1 & m1) is zero.
 */
export function zeroBitMasks(bits: number): [m0: number, m1: number] {
  if (!Number.isInteger(bits) || bits < 0 || bits > MAX_TOKEN_BITS) {
    fail('bad_request', `token bits must be an integer from 0 to ${MAX_TOKEN_BITS}`);
  }
  const high = (n: number) => (n <= 0 ? 0 : n >= 32 ? -1 : ~(-1 >>> n));
  return [high(bits), high(bits - 32)];
}

/** Writes nonce n (a safe integer) as 8 big-endian bytes. */
export function writeNonce(out: Uint8Array, offset: number, n: number): void {
  const hi = Math.floor(n / 0x1_0000_0000);
  const lo = n >>> 0;
  const view = new DataView(out.buffer, out.byteOffset + offset, 8);
  view.setUint32(0, hi, false);
  view.setUint32(4, lo, false);
}

/** The nonce that `writeNonce` wrote. */
export function readNonce(bytes: Uint8Array, offset: number): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, 8);
  return view.getUint32(0, false) * 0x1_0000_0000 + view.getUint32(4, false);
}
