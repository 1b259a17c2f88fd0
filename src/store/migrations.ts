/**
 * Migrations written once for both databases with knex's schema builder, run after each
 * database's base schema (sqlite/migrations.ts, postgres/migrations.ts). Append; never edit
 * one that has shipped.
 */
import type { Knex } from 'knex';

export interface NamedMigration extends Knex.Migration {
  name: string;
}

export const SHARED_MIGRATIONS: readonly NamedMigration[] = [
  {
    // Sync's penalty points and bans move out of the peer table (sync-state.ts says why).
    name: '0004_sync_penalties',
    up: async (knex) => {
      await knex.schema.createTable('sync_penalties', (t) => {
        t.string('peer', 62).primary();
        t.integer('penalty').notNullable().defaultTo(0);
        t.bigInteger('banned_until');
      });
      // SQLite nodes kept these in peers (0003); the columns stay there, unused.
      if (await knex.schema.hasColumn('peers', 'penalty')) {
        await knex.raw(
          'INSERT INTO sync_penalties (peer, penalty, banned_until) SELECT onion, penalty, banned_until FROM peers WHERE penalty > 0 OR banned_until IS NOT NULL',
        );
      }
    },
    down: (knex) => knex.schema.dropTable('sync_penalties'),
  },
];

/** knex's MigrationSource over a list, in order (no file globbing: the same code runs from dist/, tests and benchmarks). */
export function migrationSource(list: readonly NamedMigration[]): Knex.MigrationSource<NamedMigration> {
  return {
    getMigrations: async () => [...list],
    getMigrationName: (m) => m.name,
    getMigration: async (m) => m,
  };
}
