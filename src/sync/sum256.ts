/**
 * 256-bit sums of ids, mod 2^256, kept as 8 little-endian uint32 words (word 0 is the least
 * significant) at an offset in a shared Uint32Array, so the prefix tree holds thousands of
 * sums in one allocation. Plain number arithmetic: no BigInt and no allocation on the hot path.
 */
export const SUM_WORDS = 8;
export const SUM_BYTES = 32;

/** The 8 words of a 32-byte big-endian id, written into `out` (least significant word first). */
export function idWords(id: Uint8Array, out: Uint32Array, outOff = 0): void {
  for (let w = 0; w < SUM_WORDS; w++) {
    const b = (SUM_WORDS - 1 - w) * 4;
    out[outOff + w] = ((id[b]! << 24) | (id[b + 1]! << 16) | (id[b + 2]! << 8) | id[b + 3]!) >>> 0;
  }
}

/** acc[off..] += src[srcOff..] (mod 2^256). */
export function addWords(acc: Uint32Array, off: number, src: Uint32Array, srcOff = 0): void {
  let carry = 0;
  for (let w = 0; w < SUM_WORDS; w++) {
    const s = acc[off + w]! + src[srcOff + w]! + carry;
    acc[off + w] = s >>> 0;
    carry = s > 0xffffffff ? 1 : 0;
  }
}

/** acc[off..] -= src[srcOff..] (mod 2^256). */
export function subWords(acc: Uint32Array, off: number, src: Uint32Array, srcOff = 0): void {
  let borrow = 0;
  for (let w = 0; w < SUM_WORDS; w++) {
    const s = acc[off + w]! - src[srcOff + w]! - borrow;
    acc[off + w] = s >>> 0;
    borrow = s < 0 ? 1 : 0;
  }
}

const scratch = new Uint32Array(SUM_WORDS);

/** acc[off..] += id. */
export function addId(acc: Uint32Array, off: number, id: Uint8Array): void {
  idWords(id, scratch);
  addWords(acc, off, scratch);
}

/** acc[off..] -= id. */
export function subId(acc: Uint32Array, off: number, id: Uint8Array): void {
  idWords(id, scratch);
  subWords(acc, off, scratch);
}

/** The sum at acc[off..] as 32 big-endian bytes. */
export function sumToBytes(acc: Uint32Array, off = 0): Buffer {
  const out = Buffer.allocUnsafe(SUM_BYTES);
  for (let w = 0; w < SUM_WORDS; w++) out.writeUInt32BE(acc[off + w]!, (SUM_WORDS - 1 - w) * 4);
  return out;
}

/** Sum of a list of ids as 32 big-endian bytes. */
export function sumOfIds(ids: Iterable<Uint8Array>): Buffer {
  const acc = new Uint32Array(SUM_WORDS);
  for (const id of ids) addId(acc, 0, id);
  return sumToBytes(acc);
}
