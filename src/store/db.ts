/**
 * A knex pool and what its SQL dialect changes for the query modules beside this file: how
 * rows come back from a raw query, and SQLite's index hints. Everything else those modules
 * write is plain SQL both SQLite and PostgreSQL run as it is (knex turns `?` into `$n`).
 */
import type { Knex } from 'knex';

export type Dialect = 'sqlite' | 'postgres';

export class Db {
  constructor(
    readonly knex: Knex,
    readonly dialect: Dialect,
  ) {}

  /** Rows of one raw statement (sqlite3 answers an array, pg a result object). */
  async rows<T>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
    const res: unknown = await this.knex.raw(sql, params as Knex.RawBinding[]);
    return this.dialect === 'postgres' ? (res as { rows: T[] }).rows : (res as T[]);
  }

  /**
   * SQLite's INDEXED BY, where its planner was measured to pick a scan over the index that
   * bounds the query; PostgreSQL has no hints and its planner uses the statistics it keeps.
   */
  indexed(index: string): string {
    return this.dialect === 'sqlite' ? ` INDEXED BY ${index}` : '';
  }

  /** `LIMIT n`, or nothing for n < 0 (SQLite's LIMIT -1 means no limit; PostgreSQL refuses it). */
  limit(n: number): string {
    return n < 0 ? '' : ` LIMIT ${Math.floor(n)}`;
  }
}

/** `?,?,…` for n bound values. */
export function placeholders(n: number): string {
  return new Array(n).fill('?').join(',');
}
