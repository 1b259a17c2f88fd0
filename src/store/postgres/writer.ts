/**
 * PostgreSQL's side of the single writer. Every transaction first takes one advisory lock, so
 * writers commit one at a time even when several processes share the database: the writer then
 * hands out seqs itself, dense and in commit order, exactly as SQLite's rowid does, and a
 * reader that has seen seq n never later meets a smaller one (the cursor of /get/, /subscribe/
 * and sync's catch-up relies on that). Under the lock nobody else inserts, so the ids already
 * stored are looked up once and only new rows are inserted, as multi-row INSERTs with binary
 * parameters (Buffers travel as bytes, not hex).
 */
import type { Knex } from 'knex';
import type pg from 'pg';
import type { KeyRow } from '../keys.js';
import type { EntryRowInput, WriteConnection, WriteTx } from '../writer.js';

/** pg_advisory_xact_lock key of the entry writer: 'p2pd' in ASCII. */
export const WRITE_LOCK_KEY = 0x70327064;
const PARAMS_PER_ROW = 10;
/** Rows per statement: 500 × 10 = 5,000 parameters, far below PostgreSQL's 65,535. */
const MAX_CHUNK_ROWS = 500;

/** `?` placeholders to `$1, $2, …` (the writer talks to pg directly, not through knex). */
export function numbered(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

class PostgresWriteTx implements WriteTx {
  /** Highest seq so far in this transaction. */
  private lastSeq = 0;

  constructor(private readonly client: pg.ClientBase) {}

  async tail(): Promise<{ seq: number; receivedAt: number } | undefined> {
    const { rows } = await this.client.query<{ seq: number; received_at: number }>('SELECT seq, received_at FROM entries ORDER BY seq DESC LIMIT 1');
    const last = rows[0];
    this.lastSeq = last?.seq ?? 0;
    return last && { seq: last.seq, receivedAt: last.received_at };
  }

  async tableKey(fingerprint: Buffer, spki: Buffer): Promise<KeyRow> {
    await this.client.query('INSERT INTO table_keys (fingerprint, spki) VALUES ($1, $2) ON CONFLICT (fingerprint) DO NOTHING', [fingerprint, spki]);
    const { rows } = await this.client.query<{ id: number; spki: Buffer }>('SELECT id, spki FROM table_keys WHERE fingerprint = $1', [fingerprint]);
    return { id: rows[0]!.id, fingerprint, spki: rows[0]!.spki };
  }

  async insertEntries(rows: EntryRowInput[]): Promise<number[]> {
    const existing = await this.client.query<{ id: Buffer }>('SELECT id FROM entries WHERE id = ANY($1::bytea[])', [rows.map((r) => r.id)]);
    const stored = new Set(existing.rows.map((r) => r.id.toString('latin1')));
    const seqs = rows.map((r) => (stored.has(r.id.toString('latin1')) ? 0 : ++this.lastSeq));
    const fresh = rows.flatMap((r, i) => (seqs[i] === 0 ? [] : [{ seq: seqs[i]!, r }]));
    for (let offset = 0; offset < fresh.length; offset += MAX_CHUNK_ROWS) {
      const chunk = fresh.slice(offset, offset + MAX_CHUNK_ROWS);
      const params: unknown[] = [];
      for (const { seq, r } of chunk) params.push(seq, r.id, r.tableId, r.recipient, r.receivedAt, r.createdAt, r.version, r.payload, r.signature, r.proof);
      await this.client.query({ name: `p2pdb_insert_${chunk.length}`, text: insertSql(chunk.length), values: params });
    }
    return seqs;
  }

  async run(sql: string, params: unknown[]): Promise<void> {
    await this.client.query(numbered(sql), params);
  }
}

const statements = new Map<number, string>();
function insertSql(rows: number): string {
  let sql = statements.get(rows);
  if (!sql) {
    const values: string[] = [];
    for (let r = 0; r < rows; r++) {
      const p = r * PARAMS_PER_ROW;
      values.push(`(${Array.from({ length: PARAMS_PER_ROW }, (_, k) => `$${p + k + 1}`).join(',')})`);
    }
    sql = 'INSERT INTO entries (seq, id, table_id, recipient, received_at, created_at, version, payload, signature, proof) VALUES ' + values.join(',');
    statements.set(rows, sql);
  }
  return sql;
}

/** knex's pool discards a connection it finds marked so. */
type PooledClient = pg.ClientBase & { __knex__disposed?: unknown };

/** The connection is gone (server killed, restarted, network), as opposed to a refused statement. */
export function isConnectionLost(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' ? e.code : '';
  const message = typeof e?.message === 'string' ? e.message : '';
  return (
    /^(08|57P)/.test(code) ||
    ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT'].includes(code) ||
    /Connection terminated|not queryable|terminating connection|server closed the connection|the database system is (starting|shutting) up|Timeout acquiring a connection/i.test(message)
  );
}

export class PostgresWriteConnection implements WriteConnection {
  constructor(private readonly knex: Knex) {}

  async transaction<T>(fn: (tx: WriteTx) => Promise<T>): Promise<T> {
    // A connection from the pool per transaction. One that died with the server (a restart)
    // is thrown away; when that shows at BEGIN, nothing was sent, so a fresh one is tried.
    for (let attempt = 1; ; attempt++) {
      const client = (await this.knex.client.acquireConnection()) as PooledClient;
      let begun = false;
      try {
        await client.query('BEGIN');
        begun = true;
        await client.query('SELECT pg_advisory_xact_lock($1)', [WRITE_LOCK_KEY]);
        const out = await fn(new PostgresWriteTx(client));
        await client.query('COMMIT');
        return out;
      } catch (err) {
        if (isConnectionLost(err)) client.__knex__disposed = err;
        else await client.query('ROLLBACK').catch(() => undefined);
        if (!begun && attempt < 3 && isConnectionLost(err)) continue;
        throw err;
      } finally {
        await this.knex.client.releaseConnection(client);
      }
    }
  }

  async close(): Promise<void> {}
}
