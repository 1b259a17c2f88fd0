/**
 * Ids of entries this node refused when a peer sent them (a proof below our bits from a peer
 * that asks for fewer, a table we stopped mirroring, a bad signature). Reconciliation would
 * list them as missing on every sync; remembering them stops the refetch loop. Bounded, oldest
 * forgotten first; a forgotten id is merely fetched and refused once more.
 */
export const DEFAULT_REFUSED_CAPACITY = 100_000;

/**
 * Only refusals of an entry whose content hashes to the id it claims are remembered: those
 * come after the id check (entry/validate.ts), so every copy of that id is refused the same
 * way. A refusal before it (malformed, id_mismatch, a bad key) is about bytes a peer chose, not
 * about the entry: remembering its claimed id would let a peer send junk under a real entry's
 * id and stop this node fetching that entry from anyone. Time-dependent refusals
 * (created_in_future) are not remembered either: the entry may be accepted later.
 */
const CONTENT_BOUND = new Set(['table_not_allowed', 'pow_insufficient', 'bad_signature']);

export class RefusedIds {
  private readonly ids = new Set<string>();

  constructor(private readonly capacity = DEFAULT_REFUSED_CAPACITY) {}

  get size(): number {
    return this.ids.size;
  }

  has(id: Buffer): boolean {
    return this.ids.has(id.toString('latin1'));
  }

  /** The remembered ids under a hex id prefix, 32 bytes each, concatenated (what a range pull skips). */
  under(prefix: string): Uint8Array {
    const nibbles = [...prefix].map((c) => parseInt(c, 16));
    const found: string[] = [];
    for (const key of this.ids) {
      let match = true;
      for (let i = 0; i < nibbles.length && match; i++) {
        const byte = key.charCodeAt(i >> 1);
        match = ((i & 1 ? byte : byte >> 4) & 0x0f) === nibbles[i];
      }
      if (match) found.push(key);
    }
    return new Uint8Array(Buffer.from(found.join(''), 'latin1'));
  }

  /** Remembers an id refused with `code`, unless the refusal is transient. */
  add(id: Buffer, code: string): void {
    if (!CONTENT_BOUND.has(code)) return;
    const key = id.toString('latin1');
    if (this.ids.has(key)) return;
    this.ids.add(key);
    // A Set iterates in insertion order: the first key is the oldest.
    if (this.ids.size > this.capacity) this.ids.delete(this.ids.values().next().value!);
  }
}
