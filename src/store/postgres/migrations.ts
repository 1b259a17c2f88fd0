/**
 * The PostgreSQL schema: the same tables and meaning as SQLite's (sqlite/migrations.ts explains
 * each choice), written with knex's schema builder, plus what only PostgreSQL has. Append new
 * migrations to SHARED_MIGRATIONS when they serve both databases.
 *
 * Differences from SQLite, and why:
 * - seq is a plain bigint key the writer assigns under its advisory lock (writer.ts): dense and
 *   in commit order, as SQLite's rowid.
 * - Secondary indexes name seq explicitly: (table_id, seq), (recipient, seq) and (recipient,
 *   table_id, seq) (SQLite's end in the rowid by themselves); the unique id index carries seq
 *   too (INCLUDE), for index-only walks.
 * - Columns are ordered widest fixed-size first, so no alignment padding sits between them.
 * - payload is stored EXTERNAL: ciphertext does not compress, so PostgreSQL's TOAST must not
 *   spend time trying when a row passes ~2 KB.
 */
import { migrationSource, SHARED_MIGRATIONS, type NamedMigration } from '../migrations.js';

const BASE: readonly NamedMigration[] = [
  {
    name: '0001_postgres_schema',
    up: async (knex) => {
      await knex.schema.createTable('table_keys', (t) => {
        t.increments('id').primary();
        t.bigInteger('entry_count').notNullable().defaultTo(0);
        t.binary('fingerprint').notNullable().unique();
        t.binary('spki').notNullable();
      });
      await knex.schema.createTable('entries', (t) => {
        t.bigInteger('seq').primary();
        t.bigInteger('received_at').notNullable();
        t.bigInteger('created_at').notNullable();
        t.integer('table_id').notNullable().references('id').inTable('table_keys');
        t.smallint('version').notNullable();
        t.binary('id').notNullable();
        t.binary('recipient').notNullable();
        t.binary('payload').notNullable();
        t.binary('signature').notNullable();
        t.binary('proof').notNullable();
        t.index(['table_id', 'seq'], 'entries_table');
        t.index(['recipient', 'seq'], 'entries_recipient');
        t.index(['recipient', 'table_id', 'seq'], 'entries_recipient_table');
      });
      // seq rides along in the id index, so the sync index is rebuilt from two index-only
      // scans (id-ranges.ts walkIds) instead of reading every row.
      await knex.raw('CREATE UNIQUE INDEX entries_id ON entries (id) INCLUDE (seq)');
      await knex.raw('ALTER TABLE entries ALTER COLUMN payload SET STORAGE EXTERNAL');
      await knex.schema.createTable('received_seconds', (t) => {
        t.bigInteger('second').primary();
        t.bigInteger('first_seq').notNullable();
      });
      await knex.schema.createTable('entry_totals', (t) => {
        t.integer('id').primary();
        t.bigInteger('entries').notNullable();
        t.check('id = 1');
      });
      await knex('entry_totals').insert({ id: 1, entries: 0 });
      await knex.schema.createTable('peers', (t) => {
        t.string('onion', 62).primary();
        t.text('tables');
        t.integer('pow_bits');
        t.text('protocol');
        t.text('software');
        t.bigInteger('first_seen').notNullable();
        t.bigInteger('last_seen');
        t.bigInteger('last_attempt');
        t.bigInteger('next_attempt');
        t.integer('failures').notNullable().defaultTo(0);
        t.string('source', 8).notNullable().checkIn(['config', 'manual', 'hello', 'learned']);
        t.smallint('verified').notNullable().defaultTo(0).checkIn(['0', '1']);
      });
      await knex.schema.createTable('sync_cursors', (t) => {
        t.string('peer', 62).notNullable();
        t.binary('table_fp').notNullable();
        t.string('prefix', 64).notNullable();
        t.text('cursor').notNullable();
        t.bigInteger('claimed').notNullable();
        t.bigInteger('fetched').notNullable().defaultTo(0);
        t.bigInteger('updated_at').notNullable();
        t.primary(['peer', 'table_fp', 'prefix']);
      });
    },
    down: async (knex) => {
      for (const table of ['sync_cursors', 'peers', 'entry_totals', 'received_seconds', 'entries', 'table_keys']) await knex.schema.dropTable(table);
    },
  },
];

export const POSTGRES_MIGRATIONS: readonly NamedMigration[] = [...BASE, ...SHARED_MIGRATIONS];

export const postgresMigrationSource = migrationSource(POSTGRES_MIGRATIONS);
