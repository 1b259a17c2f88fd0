/**
 * The single writer path, the same for both databases: one transaction for a group of insert()
 * calls, the first occurrence of an id wins, counters and the received-seconds map are kept in
 * the same transaction, and the entries newly stored are reported once it has committed. What
 * differs per database (locking, the bulk insert) sits behind WriteConnection.
 */
import type { ValidEntry } from '../entry/validate.js';
import { fingerprintKey, type KeyDirectory, type KeyRow } from './keys.js';
import type { InsertOutcome, StoredNotice } from './types.js';

/** One entries row as the writer inserts it. */
export interface EntryRowInput {
  id: Buffer;
  tableId: number;
  recipient: Buffer;
  receivedAt: number;
  createdAt: number;
  version: number;
  payload: Buffer;
  signature: Buffer;
  proof: Buffer;
}

/** What the shared writer needs inside one write transaction. */
export interface WriteTx {
  /** The highest seq stored and its received_at; read after the write lock is held. */
  tail(): Promise<{ seq: number; receivedAt: number } | undefined>;
  /** The table_keys row of a fingerprint, created when new. */
  tableKey(fingerprint: Buffer, spki: Buffer): Promise<KeyRow>;
  /** Inserts rows whose id is new; per row, in order, the seq it got or 0 when the id existed. */
  insertEntries(rows: EntryRowInput[]): Promise<number[]>;
  /** A statement without result rows (the counters). */
  run(sql: string, params: unknown[]): Promise<void>;
}

export interface WriteConnection {
  /** Runs fn in one transaction that holds the store's write lock; commits durably, or rolls back and rethrows. */
  transaction<T>(fn: (tx: WriteTx) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

interface Candidate {
  call: number;
  index: number;
  entry: ValidEntry;
}

export class EntryWriter {
  constructor(
    private readonly conn: WriteConnection,
    private readonly keys: KeyDirectory,
    private readonly clock: () => number,
  ) {}

  /**
   * One transaction for all the calls; outcomes per call, in order. Entries newly stored are
   * appended to `committed` (seq order) once the transaction has committed.
   */
  async write(calls: ValidEntry[][], committed: StoredNotice[] = []): Promise<InsertOutcome[][]> {
    const outcomes: InsertOutcome[][] = calls.map((c) => new Array<InsertOutcome>(c.length).fill('duplicate'));
    // First occurrence of each id wins; later ones (same call or another call) are duplicates.
    const seen = new Set<string>();
    const candidates: Candidate[] = [];
    calls.forEach((entries, call) =>
      entries.forEach((entry, index) => {
        const key = entry.id.toString('latin1');
        if (seen.has(key)) return;
        seen.add(key);
        candidates.push({ call, index, entry });
      }),
    );
    if (candidates.length === 0) return outcomes;

    const createdKeys: KeyRow[] = [];
    const notices = await this.conn.transaction(async (tx) => {
      const last = await tx.tail();
      // received_at never decreases with seq, even if the wall clock steps back.
      const receivedAt = Math.max(this.clock(), last?.receivedAt ?? 0);
      const keyIds = await this.keyIds(tx, candidates, createdKeys);
      const rows = candidates.map(({ entry: v }): EntryRowInput => ({
        id: v.id,
        tableId: keyIds.get(fingerprintKey(v.tableFingerprint))!,
        recipient: v.entry.to,
        receivedAt,
        createdAt: v.entry.createdAt,
        version: v.entry.version,
        payload: v.entry.payload,
        signature: v.entry.signature,
        proof: v.entry.proof,
      }));
      const seqs = await tx.insertEntries(rows);
      const stored: StoredNotice[] = [];
      const perTable = new Map<number, number>();
      candidates.forEach((c, i) => {
        const seq = seqs[i]!;
        if (seq === 0) return;
        outcomes[c.call]![c.index] = 'stored';
        stored.push({ seq, receivedAt, entry: c.entry });
        perTable.set(rows[i]!.tableId, (perTable.get(rows[i]!.tableId) ?? 0) + 1);
      });
      if (stored.length > 0) {
        stored.sort((a, b) => a.seq - b.seq);
        for (const [tableId, n] of perTable) {
          await tx.run('UPDATE table_keys SET entry_count = entry_count + ? WHERE id = ?', [n, tableId]);
        }
        await tx.run('UPDATE entry_totals SET entries = entries + ? WHERE id = 1', [stored.length]);
        // The first commit in a second records where that second starts; later ones are no-ops.
        await tx.run('INSERT INTO received_seconds (second, first_seq) VALUES (?, ?) ON CONFLICT (second) DO NOTHING', [
          Math.floor(receivedAt / 1000),
          stored[0]!.seq,
        ]);
      }
      return stored;
    });
    for (const n of notices) committed.push(n);
    // Only committed rows enter the directory, so a rollback cannot leave a dangling id.
    for (const row of createdKeys) this.keys.remember(row);
    return outcomes;
  }

  close(): Promise<void> {
    return this.conn.close();
  }

  /** table_keys ids for the candidates' tables, creating rows for new tables (inside the transaction). */
  private async keyIds(tx: WriteTx, candidates: Candidate[], created: KeyRow[]): Promise<Map<string, number>> {
    const ids = new Map<string, number>();
    for (const { entry } of candidates) {
      const key = fingerprintKey(entry.tableFingerprint);
      if (ids.has(key)) continue;
      const cached = this.keys.idOf(entry.tableFingerprint);
      if (cached !== undefined) {
        ids.set(key, cached);
        continue;
      }
      const row = await tx.tableKey(entry.tableFingerprint, entry.entry.table);
      ids.set(key, row.id);
      created.push(row);
    }
    return ids;
  }
}
