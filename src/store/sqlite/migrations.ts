/**
 * Schema migrations, as an in-code list for knex's migrator (no file globbing, so the same
 * code runs from dist/, from tests and from benchmarks). Append new migrations; never edit
 * one that has shipped.
 *
 * ## 0001_entries: the schema, and why
 *
 *   table_keys(id INTEGER PRIMARY KEY, fingerprint BLOB(32) UNIQUE, spki BLOB, entry_count)
 *   entries(seq INTEGER PRIMARY KEY, id BLOB(32), table_id → table_keys.id, recipient BLOB(32),
 *           received_at, created_at, version, payload, signature, proof)
 *     UNIQUE INDEX entries_id (id)
 *     INDEX entries_table (table_id)          -- ordered by (table_id, seq)
 *     INDEX entries_recipient (recipient)     -- ordered by (recipient, seq)
 *   received_seconds(second INTEGER PRIMARY KEY, first_seq)
 *   entry_totals(id = 1, entries)
 *
 * Sized for 10–50 million entries of ~1 KB:
 * - Ids and fingerprints are 32-byte BLOBs, never hex text (half the bytes in the row and,
 *   more importantly, in the unique index that every insert probes at a random place).
 * - A table's public key (300–550 bytes of SPKI DER) is stored once in table_keys and
 *   referenced by a small integer; entries only carry table_id.
 * - seq is the rowid: appends go to the end of the table b-tree, it is the cursor of /get/,
 *   and every index already ends with the rowid, so an index on (table_id) *is* an index on
 *   (table_id, seq) without storing seq twice. No AUTOINCREMENT: entries are never deleted,
 *   so max(seq)+1 never reuses a seq that a client has seen.
 * - Only three secondary indexes, because each costs ingest speed (the random-id index costs
 *   most: ~1 dirty page per insert once it outgrows the batch): the unique id (duplicates and
 *   ids=), (table_id, seq) for tables=, (recipient, seq) for recipients=.
 * - received_at is not indexed. It never decreases with seq (the writer stamps
 *   max(now, last received_at)), so received_seconds maps each second that saw a commit to
 *   the first seq stored in it, written in the insert transaction; receivedSince becomes a
 *   seq lower bound: one primary-key lookup there, then a binary search by seq (reader.ts).
 * - Counts are kept incrementally in the insert transaction (table_keys.entry_count and
 *   entry_totals), because COUNT(*) scans: ~105 ms per million rows grouped by table.
 * - Columns: small fixed-size ones first, blobs last, so filters read the row's head only.
 */
import type { Knex } from 'knex';
import { migrationSource, SHARED_MIGRATIONS, type NamedMigration } from '../migrations.js';

async function runAll(knex: Knex, statements: string[]): Promise<void> {
  // The driver runs only the first statement of a multi-statement string.
  for (const sql of statements) await knex.raw(sql);
}

const BASE: readonly NamedMigration[] = [
  {
    name: '0001_entries',
    up: (knex) =>
      runAll(knex, [
        `CREATE TABLE table_keys (
           id INTEGER PRIMARY KEY,
           fingerprint BLOB NOT NULL UNIQUE,
           spki BLOB NOT NULL,
           entry_count INTEGER NOT NULL DEFAULT 0
         )`,
        `CREATE TABLE entries (
           seq INTEGER PRIMARY KEY,
           id BLOB NOT NULL,
           table_id INTEGER NOT NULL REFERENCES table_keys(id),
           recipient BLOB NOT NULL,
           received_at INTEGER NOT NULL,
           created_at INTEGER NOT NULL,
           version INTEGER NOT NULL,
           payload BLOB NOT NULL,
           signature BLOB NOT NULL,
           proof BLOB NOT NULL
         )`,
        'CREATE UNIQUE INDEX entries_id ON entries(id)',
        'CREATE INDEX entries_table ON entries(table_id)',
        'CREATE INDEX entries_recipient ON entries(recipient)',
        'CREATE TABLE received_seconds (second INTEGER PRIMARY KEY, first_seq INTEGER NOT NULL)',
        'CREATE TABLE entry_totals (id INTEGER PRIMARY KEY CHECK (id = 1), entries INTEGER NOT NULL)',
        'INSERT INTO entry_totals (id, entries) VALUES (1, 0)',
      ]),
    down: (knex) =>
      runAll(knex, [
        'DROP TABLE entry_totals',
        'DROP TABLE received_seconds',
        'DROP TABLE entries',
        'DROP TABLE table_keys',
      ]),
  },
  {
    // Known peers (src/store/peer-table.ts). Small (bounded at ~1,000 rows), so no indexes:
    // every query scans it. tables is '*' or a JSON list of fingerprints, NULL while unknown;
    // for unverified peers every column but the onion is someone else's unchecked claim.
    name: '0002_peers',
    up: (knex) =>
      runAll(knex, [
        `CREATE TABLE peers (
           onion TEXT PRIMARY KEY,
           tables TEXT,
           pow_bits INTEGER,
           protocol TEXT,
           software TEXT,
           first_seen INTEGER NOT NULL,
           last_seen INTEGER,
           last_attempt INTEGER,
           next_attempt INTEGER,
           failures INTEGER NOT NULL DEFAULT 0,
           source TEXT NOT NULL CHECK (source IN ('config', 'manual', 'hello', 'learned')),
           verified INTEGER NOT NULL DEFAULT 0 CHECK (verified IN (0, 1))
         ) WITHOUT ROWID`,
      ]),
    down: (knex) => runAll(knex, ['DROP TABLE peers']),
  },
  {
    // Sync transport (src/store/sync-state.ts, used by src/sync/session.ts). sync_cursors: where a range pull from a peer stands
    // (peer, table, id prefix in hex nibbles), advanced only after the page's entries are
    // committed, deleted when the range is complete; so an interrupted bootstrap resumes there.
    // The cursor is the peer's opaque X-P2pdb-Next value. peers gains penalty points for
    // misbehaviour in sync and a ban deadline (ms) once they pass the threshold.
    name: '0003_sync_transport',
    up: (knex) =>
      runAll(knex, [
        `CREATE TABLE sync_cursors (
           peer TEXT NOT NULL,
           table_fp BLOB NOT NULL,
           prefix TEXT NOT NULL,
           cursor TEXT NOT NULL,
           claimed INTEGER NOT NULL,
           fetched INTEGER NOT NULL DEFAULT 0,
           updated_at INTEGER NOT NULL,
           PRIMARY KEY (peer, table_fp, prefix)
         ) WITHOUT ROWID`,
        'ALTER TABLE peers ADD COLUMN penalty INTEGER NOT NULL DEFAULT 0',
        'ALTER TABLE peers ADD COLUMN banned_until INTEGER',
      ]),
    down: (knex) =>
      runAll(knex, ['DROP TABLE sync_cursors', 'ALTER TABLE peers DROP COLUMN banned_until', 'ALTER TABLE peers DROP COLUMN penalty']),
  },
];

const LATER: readonly NamedMigration[] = [
  {
    // /get/ with both recipients and tables: through entries_recipient alone, a query for a
    // recipient's entries in a table they have none in walked every entry of the recipient
    // (33 ms at 10 M, linear). (recipient, table_id, rowid) makes every such pair one seek.
    // Building it on an existing store reads the table once (about 10 s per million entries).
    name: '0005_entries_recipient_table',
    up: (knex) => runAll(knex, ['CREATE INDEX entries_recipient_table ON entries(recipient, table_id)']),
    down: (knex) => runAll(knex, ['DROP INDEX entries_recipient_table']),
  },
];

export const SQLITE_MIGRATIONS: readonly NamedMigration[] = [...BASE, ...SHARED_MIGRATIONS, ...LATER];

export const sqliteMigrationSource = migrationSource(SQLITE_MIGRATIONS);
