/**
 * In-memory directory of the table_keys rows: fingerprint → row id (every insert needs it)
 * and row id → SPKI (every query rebuilds entries with it). It only ever holds committed rows:
 * the writer adds the keys it created after COMMIT, so a rollback cannot leave a dangling id.
 */
import { BoundedMap } from './cache.js';

export interface KeyRow {
  id: number;
  fingerprint: Buffer;
  spki: Buffer;
}

/** Map key for a 32-byte fingerprint: latin1 is the cheapest lossless Buffer → string. */
export function fingerprintKey(fingerprint: Buffer): string {
  return fingerprint.toString('latin1');
}

export class KeyDirectory {
  private readonly idByFingerprint: BoundedMap<string, number>;
  private readonly spkiById: BoundedMap<number, Buffer>;

  constructor(maxKeys = 100_000) {
    this.idByFingerprint = new BoundedMap(maxKeys);
    this.spkiById = new BoundedMap(Math.min(maxKeys, 20_000));
  }

  idOf(fingerprint: Buffer): number | undefined {
    return this.idByFingerprint.get(fingerprintKey(fingerprint));
  }

  spkiOf(id: number): Buffer | undefined {
    return this.spkiById.get(id);
  }

  /** Records committed rows (a row may arrive without its SPKI when only the id was read). */
  remember(row: { id: number; fingerprint: Buffer; spki?: Buffer }): void {
    this.idByFingerprint.set(fingerprintKey(row.fingerprint), row.id);
    if (row.spki) this.spkiById.set(row.id, row.spki);
  }

  rememberSpki(id: number, spki: Buffer): void {
    this.spkiById.set(id, spki);
  }
}
