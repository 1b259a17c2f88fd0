/**
 * A real PostgreSQL server for tests (never a mock, never a system service).
 *
 * scripts/run-tests.mjs starts ONE server for the whole run when a selected test file contains
 * `usePostgres(`, and passes its URL to every test process in P2PDB_TEST_POSTGRES (or, when it
 * could not start one, the reason in P2PDB_TEST_POSTGRES_ERROR). database() gives a fresh, empty
 * database on that server, so test files sharing it never see each other's tables.
 * A file run alone (node --test dist/test/x.test.js) starts its own server on first use instead.
 * privateServer() gives a test its own server, for what would disturb other files (kill -9,
 * restarts, server settings).
 *
 * The shared and the lazily started servers run with fsync off (speed; nothing kills them);
 * private servers keep fsync on unless asked. Every server this file starts is stopped after
 * the file's tests (and, failing that, when the process exits: see local-server.ts).
 * P2PDB_PG_LOG=1 logs server starts to stderr.
 */
import { after } from 'node:test';
import { P2pdbError, type ErrorCode } from '../../src/errors.js';
import {
  createDatabaseAt,
  dropDatabaseAt,
  startLocalPostgres,
  type LocalPostgres,
  type LocalPostgresOptions,
} from '../../src/store/postgres/local-server.js';
import { createLogger } from '../../src/util/log.js';

export interface TestPostgres {
  /** True when this file uses the run's shared server (P2PDB_TEST_POSTGRES). */
  readonly shared: boolean;
  /** URL of the server's `postgres` database (admin queries; create tables in database() ones). */
  serverUrl(): Promise<string>;
  /** URL of a fresh, empty database (random name unless given) on the shared or per-file server. */
  database(name?: string): Promise<string>;
  /** Drops a database made by database(), closing its connections. */
  dropDatabase(url: string): Promise<void>;
  /** A server for this test file alone (fsync on by default), stopped after the file's tests. */
  privateServer(opts?: LocalPostgresOptions): Promise<LocalPostgres>;
}

let memo: TestPostgres | undefined;

function logOption(): Pick<LocalPostgresOptions, 'log'> {
  return process.env.P2PDB_PG_LOG ? { log: createLogger() } : {};
}

/** The error run-tests.mjs met starting the shared server, as it wrote it. */
function sharedServerError(text: string): P2pdbError {
  try {
    const { code, message } = JSON.parse(text) as { code?: ErrorCode; message?: string };
    return new P2pdbError(code ?? 'postgres_failed', `the run's shared PostgreSQL server did not start: ${message ?? text}`);
  } catch {
    return new P2pdbError('postgres_failed', `the run's shared PostgreSQL server did not start: ${text}`);
  }
}

/** Call at the top level of a test file (it registers an after() hook there); memoized per file. */
export function usePostgres(): TestPostgres {
  if (memo) return memo;
  const sharedUrl = process.env.P2PDB_TEST_POSTGRES || undefined;
  const sharedError = process.env.P2PDB_TEST_POSTGRES_ERROR || undefined;
  const started: Promise<LocalPostgres>[] = [];
  let own: Promise<LocalPostgres> | undefined;

  const serverUrl = async (): Promise<string> => {
    if (sharedUrl) return sharedUrl;
    if (sharedError) throw sharedServerError(sharedError);
    if (!own) {
      own = startLocalPostgres({ fsync: false, ...logOption() });
      started.push(own);
    }
    return (await own).url;
  };

  memo = {
    shared: sharedUrl !== undefined,
    serverUrl,
    async database(name?: string) {
      return createDatabaseAt(await serverUrl(), name);
    },
    async dropDatabase(url: string) {
      const name = decodeURIComponent(new URL(url).pathname.slice(1));
      await dropDatabaseAt(await serverUrl(), name);
    },
    privateServer(opts: LocalPostgresOptions = {}) {
      const server = startLocalPostgres({ ...logOption(), ...opts });
      started.push(server);
      return server;
    },
  };

  after(async () => {
    const servers = await Promise.all(started.map((s) => s.catch(() => undefined)));
    await Promise.all(servers.map((s) => s?.stop()));
  });
  return memo;
}
