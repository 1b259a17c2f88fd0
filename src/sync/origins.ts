/**
 * Which peer an entry came from, for a while: fresh-entry pushes skip the peer that sent it.
 * Bounded (oldest forgotten first); forgetting only costs a push the peer answers "duplicate".
 */
export class OriginLog {
  private readonly map = new Map<string, string>();

  constructor(private readonly max = 100_000) {}

  note(ids: readonly Buffer[], peer: string): void {
    for (const id of ids) {
      const key = id.toString('latin1');
      this.map.delete(key);
      this.map.set(key, peer);
    }
    while (this.map.size > this.max) this.map.delete(this.map.keys().next().value as string);
  }

  of(id: Buffer): string | undefined {
    return this.map.get(id.toString('latin1'));
  }
}
