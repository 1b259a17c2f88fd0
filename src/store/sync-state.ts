/**
 * Sync's stored state (tables sync_penalties and sync_cursors): penalty points and bans per
 * peer, and where each range pull from a peer stands. It belongs to sync, not to the peer
 * table: a peer dropped from the table and learned again keeps its ban. Query builder only,
 * so the same code runs on SQLite and PostgreSQL.
 */
import type { Knex } from 'knex';
import type { SerialWrites } from './serial.js';

export interface PeerPenalty {
  penalty: number;
  /** ms since the epoch; the peer is not synced with before then. */
  bannedUntil: number | null;
}

export interface PenaltyRule {
  /** Points at which a peer is banned. */
  threshold: number;
  banMs: number;
}

/** Where a range pull from a peer stands (table sync_cursors). */
export interface RangeCursorRecord {
  peer: string;
  table: Buffer;
  /** Hex nibbles of the id prefix; '' = the whole table. */
  prefix: string;
  /** The peer's opaque cursor: continue after it. */
  cursor: string;
  /** The count the peer claimed for the range. */
  claimed: number;
  /** Entries received in this pull so far. */
  fetched: number;
  updatedAt: number;
}

interface CursorRow {
  peer: string;
  table_fp: Buffer;
  prefix: string;
  cursor: string;
  claimed: number;
  fetched: number;
  updated_at: number;
}

export class SyncStateTable {
  constructor(
    private readonly knex: Knex,
    private readonly serial: SerialWrites,
  ) {}

  /** A peer's penalty points and ban deadline (zero and null for a peer never penalised). */
  async penaltyOf(onion: string): Promise<PeerPenalty> {
    const row = (await this.knex('sync_penalties').select('penalty', 'banned_until').where({ peer: onion }).first()) as
      | { penalty: number; banned_until: number | null }
      | undefined;
    return row ? { penalty: row.penalty, bannedUntil: row.banned_until } : { penalty: 0, bannedUntil: null };
  }

  /**
   * Adds penalty points; at `rule.threshold` or more the peer is banned until now + banMs and its
   * points start again from zero (so a ban lasts banMs, and a peer that misbehaves again after
   * it is banned again). Returns the new state.
   */
  penalize(onion: string, points: number, now: number, rule: PenaltyRule): Promise<PeerPenalty> {
    return this.serial.run(async () => {
      const current = await this.penaltyOf(onion);
      let penalty = current.penalty + Math.max(0, Math.round(points));
      let bannedUntil = current.bannedUntil;
      if (penalty >= rule.threshold) {
        bannedUntil = now + rule.banMs;
        penalty = 0;
      }
      await this.knex('sync_penalties')
        .insert({ peer: onion, penalty, banned_until: bannedUntil })
        .onConflict('peer')
        .merge(['penalty', 'banned_until']);
      return { penalty, bannedUntil };
    });
  }

  /** Peers under a ban at `now`. */
  async banned(now: number): Promise<Set<string>> {
    const rows = (await this.knex('sync_penalties').select('peer').where('banned_until', '>', now)) as { peer: string }[];
    return new Set(rows.map((r) => r.peer));
  }

  /** Unfinished range pulls from a peer, oldest first. */
  async rangeCursors(peer: string): Promise<RangeCursorRecord[]> {
    const rows = (await this.knex('sync_cursors').select('*').where({ peer }).orderBy('updated_at')) as CursorRow[];
    return rows.map((r) => ({ peer: r.peer, table: r.table_fp, prefix: r.prefix, cursor: r.cursor, claimed: r.claimed, fetched: r.fetched, updatedAt: r.updated_at }));
  }

  /** Records where a range pull stands (after the page before `cursor` is committed). */
  saveRangeCursor(c: RangeCursorRecord): Promise<void> {
    return this.serial.run(async () => {
      await this.knex('sync_cursors')
        .insert({ peer: c.peer, table_fp: c.table, prefix: c.prefix, cursor: c.cursor, claimed: c.claimed, fetched: c.fetched, updated_at: c.updatedAt })
        .onConflict(['peer', 'table_fp', 'prefix'])
        .merge(['cursor', 'claimed', 'fetched', 'updated_at']);
    });
  }

  /** The range pull is complete (or abandoned). */
  clearRangeCursor(peer: string, table: Buffer, prefix: string): Promise<void> {
    return this.serial.run(async () => {
      await this.knex('sync_cursors').where({ peer, table_fp: table, prefix }).del();
    });
  }
}
