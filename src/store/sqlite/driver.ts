/**
 * Promise wrappers over the node-sqlite3 driver, for the few places that talk to a connection
 * directly (the writer's prepared statements, pragmas). Each call is one trip to libuv's pool.
 */
import type { Database, RunResult, Statement } from 'sqlite3';

export type { Database, Statement };

export interface RunInfo {
  changes: number;
  lastID: number;
}

export function exec(db: Database, sql: string): Promise<void> {
  return new Promise((resolve, reject) => db.exec(sql, (err) => (err ? reject(err) : resolve())));
}

export function run(db: Database, sql: string, params: unknown[] = []): Promise<RunInfo> {
  return new Promise((resolve, reject) =>
    db.run(sql, params, function (this: RunResult, err: Error | null) {
      if (err) reject(err);
      else resolve({ changes: this.changes, lastID: this.lastID });
    }),
  );
}

export function all<T>(db: Database, sql: string, params: unknown[] = []): Promise<T[]> {
  return new Promise((resolve, reject) => db.all<T>(sql, params, (err, rows) => (err ? reject(err) : resolve(rows))));
}

export function prepare(db: Database, sql: string): Promise<Statement> {
  return new Promise((resolve, reject) => {
    const stmt = db.prepare(sql, (err: Error | null) => (err ? reject(err) : resolve(stmt)));
  });
}

export function runStatement(stmt: Statement, params: unknown[]): Promise<RunInfo> {
  return new Promise((resolve, reject) =>
    stmt.run(params, function (this: RunResult, err: Error | null) {
      if (err) reject(err);
      else resolve({ changes: this.changes, lastID: this.lastID });
    }),
  );
}

export function finalize(stmt: Statement): Promise<void> {
  return new Promise((resolve) => stmt.finalize(() => resolve()));
}
