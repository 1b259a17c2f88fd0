/**
 * Plain-JS nonce search, the fallback where WebAssembly is disabled (Tor Browser's Safer level).
 * Same contract as the WASM search: returns the index (0..count-1) of the first nonce from
 * (hi, lo) on whose digest (H0 & m0) | (H1 & m1) is zero, or -1. Rounds 0..9 depend only on the
 * id and token index, so they run once per call.
 */
import { SHA256_IV, SHA256_K, TEMPLATE_WORDS, W12_PADDING, W15_LENGTH } from './token-block.js';

const K = Int32Array.from(SHA256_K);
const IV = Int32Array.from(SHA256_IV);

export function searchJs(template: Uint32Array, hi: number, lo: number, count: number, m0: number, m1: number): number {
  const w = new Int32Array(64);
  for (let t = 0; t < TEMPLATE_WORDS - 1; t++) w[t] = template[t]! | 0;
  w[15] = W15_LENGTH;
  const base10 = template[TEMPLATE_WORDS - 1]! | 0;

  const mid = IV.slice();
  compress(mid, w, 0, 10);
  const h0 = IV[0]!;
  const h1 = IV[1]!;
  const state = new Int32Array(8);

  for (let i = 0; i < count; i++) {
    w[10] = base10 | (hi >>> 16);
    w[11] = (hi << 16) | (lo >>> 16);
    w[12] = (lo << 16) | W12_PADDING;
    for (let t = 16; t < 64; t++) {
      const x = w[t - 15]!;
      const y = w[t - 2]!;
      const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
      w[t] = (s1 + w[t - 7]! + s0 + w[t - 16]!) | 0;
    }
    state.set(mid);
    compress(state, w, 10, 64);
    if ((((state[0]! + h0) & m0) | ((state[1]! + h1) & m1)) === 0) return i;
    lo = (lo + 1) >>> 0;
    if (lo === 0) hi++;
  }
  return -1;
}

/** Rounds [from, to) of SHA-256 on `s` (a..h), without the final feed-forward. */
function compress(s: Int32Array, w: Int32Array, from: number, to: number): void {
  let a = s[0]!, b = s[1]!, c = s[2]!, d = s[3]!, e = s[4]!, f = s[5]!, g = s[6]!, h = s[7]!;
  for (let t = from; t < to; t++) {
    const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const t1 = (h + S1 + (g ^ (e & (f ^ g))) + K[t]! + w[t]!) | 0;
    const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const t2 = (S0 + ((a & b) | (c & (a | b)))) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  s[0] = a; s[1] = b; s[2] = c; s[3] = d; s[4] = e; s[5] = f; s[6] = g; s[7] = h;
}
