/**
 * Prefixes of ids in nibbles (hex strings, '' = the whole table, at most 64 nibbles) and the
 * id range [lo, hi) each covers. Ids are SHA-256 outputs, so a node at depth k holds about
 * N / 16^k of a table's N ids.
 */
export const MAX_DEPTH = 64;
const HEX = /^[0-9a-f]*$/;

export function isPrefix(p: string): boolean {
  return p.length <= MAX_DEPTH && HEX.test(p);
}

/** Nibble i (0 = high nibble of byte 0) of an id. */
export function nibbleAt(id: Uint8Array, i: number): number {
  const b = id[i >> 1]!;
  return i & 1 ? b & 0x0f : b >> 4;
}

export function childPrefix(prefix: string, nibble: number): string {
  return prefix + nibble.toString(16);
}

/** Whether an id lies in the node of a prefix. */
export function idHasPrefix(id: Uint8Array, prefix: string): boolean {
  for (let i = 0; i < prefix.length; i++) {
    if (nibbleAt(id, i) !== parseInt(prefix[i]!, 16)) return false;
  }
  return true;
}

/** The first `nibbles` nibbles of an id, as a prefix string. */
export function prefixOf(id: Uint8Array, nibbles: number): string {
  return Buffer.from(id.subarray(0, (nibbles + 1) >> 1)).toString('hex').slice(0, nibbles);
}

/**
 * The id range of a prefix: lo = prefix then zeros; hi = the next prefix of the same length
 * then zeros, or null when the prefix is all 'f' (no upper bound below 2^256).
 */
export function prefixRange(prefix: string): { lo: Buffer; hi: Buffer | null } {
  const lo = Buffer.alloc(32);
  Buffer.from((prefix.length & 1 ? prefix + '0' : prefix), 'hex').copy(lo);
  const hi = Buffer.from(lo);
  // Add 1 at the prefix's last nibble, carrying towards byte 0.
  let pos = prefix.length - 1;
  while (pos >= 0) {
    const byte = pos >> 1;
    const shift = pos & 1 ? 0 : 4;
    const nib = ((hi[byte]! >> shift) & 0x0f) + 1;
    hi[byte] = (hi[byte]! & ~(0x0f << shift)) | ((nib & 0x0f) << shift);
    if (nib < 16) return { lo, hi };
    pos--;
  }
  return { lo, hi: null };
}
