/**
 * A throwaway local PostgreSQL server for tests, `npm run bench -- --backend postgres` and the
 * demo network: its own cluster (initdb) in its own directory, listening on 127.0.0.1 and a
 * unix socket in that directory only, on a port drawn like tor's (src/tor/ports.ts).
 *
 * The postmaster is a direct child of this Node process (not daemonized through pg_ctl), so its
 * exit is an event rather than something to poll for. As root it runs as the `postgres` system
 * user (spawn's uid/gid: what `runuser -u postgres --` does, without the extra process), because
 * initdb and postgres refuse to run as root.
 *
 * Leaks: every server still running when this Node process exits normally gets SIGQUIT
 * (immediate shutdown) from a process 'exit' hook. For the deaths that run no hook (SIGKILL,
 * an unhandled SIGTERM) each server has a small detached guard (`sh`) whose stdin is a pipe
 * from this process: when the pipe closes, i.e. when this process is gone however it died, the
 * guard sends SIGQUIT to the postmaster named in DATA/postmaster.pid and removes the temporary
 * directory. Only a SIGKILL of the whole process group (which also kills postgres itself) or
 * the guard being killed by hand bypass that.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, closeSync, constants, existsSync, openSync, readdirSync, readFileSync, readSync, realpathSync, statSync } from 'node:fs';
import { chown, mkdir, mkdtemp, rm } from 'node:fs/promises';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import { P2pdbError, fail } from '../../errors.js';
import { freePort } from '../../tor/ports.js';
import { silentLogger, type Logger } from '../../util/log.js';

export interface LocalPostgresOptions {
  /**
   * Directory for the cluster (DIR/data), its unix socket (DIR/sock) and its log
   * (DIR/postgres.log). An existing cluster there is reused (no initdb) and the directory is
   * never removed. Default: a fresh temporary directory, removed by stop().
   */
  dir?: string;
  /** TCP port on 127.0.0.1. Default: a free port below the ephemeral range (retried on a clash). */
  port?: number;
  /**
   * fsync, full_page_writes and synchronous_commit. Default true: a committed row survives a
   * SIGKILL of the postmaster (and of the machine). false: faster, for data nobody needs back.
   */
  fsync?: boolean;
  /** Extra server settings (`-c name=value`), over the defaults below. */
  settings?: Record<string, string>;
  log?: Logger;
  /** Keep a temporary directory after stop() (P2PDB_KEEP_TMP=1 does too). */
  keepDir?: boolean;
  /** Deadline for the server to accept connections after each (re)start. Default 120 s. */
  timeoutMs?: number;
  /** Directory holding initdb and postgres. Default: see findPostgresBinDir(). */
  binDir?: string;
}

export interface LocalPostgres {
  /** postgres://postgres@127.0.0.1:PORT/postgres (trust authentication, loopback only). */
  readonly url: string;
  readonly host: '127.0.0.1';
  readonly port: number;
  /** The directory holding data/, sock/ and postgres.log. */
  readonly dir: string;
  readonly dataDir: string;
  readonly socketDir: string;
  readonly logFile: string;
  readonly binDir: string;
  /** pid of the running postmaster, undefined while stopped. */
  readonly pid: number | undefined;
  isRunning(): boolean;
  /** URL of database `name` on this server (which may not exist). */
  databaseUrl(name: string): string;
  /** Creates a fresh, empty database (a random unique name by default) and returns its URL. */
  createDatabase(name?: string): Promise<string>;
  /** Drops a database, closing its connections (WITH (FORCE)); no error when it does not exist. */
  dropDatabase(name: string): Promise<void>;
  /**
   * Sends `signal` to the postmaster (SIGKILL: a crash) and resolves once it and every process
   * it had started are gone. The directory stays, for start().
   */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /**
   * Starts the server again on the same port and directory after stop({ keep: true }) or
   * kill(), resolving once it accepts connections (crash recovery happens here). No-op while running.
   */
  start(): Promise<void>;
  /**
   * Fast shutdown (what `pg_ctl -m fast stop` does: SIGINT), then removes the temporary
   * directory unless `keep` (or keepDir / P2PDB_KEEP_TMP). Idempotent.
   */
  stop(opts?: { keep?: boolean }): Promise<void>;
}

/** Server settings for a small test machine (2 cores, 24 GiB). */
export const DEFAULT_SETTINGS: Readonly<Record<string, string>> = {
  max_connections: '200',
  shared_buffers: '256MB',
  // English messages in the log: a port clash is recognised by its text.
  lc_messages: 'C',
};

/** Settings only this module sets: the server listens on loopback and its own socket only. */
const RESERVED = new Set(['listen_addresses', 'port', 'unix_socket_directories', 'data_directory', 'hba_file', 'config_file']);

const SERVER_BINARIES = ['initdb', 'postgres'];
const INSTALL_HINT = 'install them with `apt-get install -y postgresql` (Debian/Ubuntu; `npm test` does that when run as root), or set P2PDB_PG_BINDIR';

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

function hasServerBinaries(dir: string): boolean {
  return SERVER_BINARIES.every((b) => isExecutable(path.join(dir, b)));
}

/**
 * Where initdb and postgres are: `explicit` (or P2PDB_PG_BINDIR), else the newest
 * /usr/lib/postgresql/N/bin (Debian), else `pg_config --bindir`, else PATH.
 * Throws postgres_unavailable saying how to install them.
 */
export function findPostgresBinDir(explicit: string | undefined = process.env.P2PDB_PG_BINDIR || undefined): string {
  if (explicit) {
    if (hasServerBinaries(explicit)) return explicit;
    fail('postgres_unavailable', `${explicit} has no PostgreSQL server binaries (${SERVER_BINARIES.join(', ')}): ${INSTALL_HINT}`);
  }
  const candidates: string[] = [];
  try {
    const versions = readdirSync('/usr/lib/postgresql').filter((v) => /^\d+(\.\d+)?$/.test(v));
    versions.sort((a, b) => Number(b) - Number(a));
    candidates.push(...versions.map((v) => `/usr/lib/postgresql/${v}/bin`));
  } catch {
    // not Debian's layout
  }
  try {
    candidates.push(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
  } catch {
    // no pg_config
  }
  candidates.push(...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean));
  const found = candidates.find(hasServerBinaries);
  if (found) return found;
  fail('postgres_unavailable', `PostgreSQL server binaries (${SERVER_BINARIES.join(', ')}) were not found in /usr/lib/postgresql/*/bin, \`pg_config --bindir\` or PATH: ${INSTALL_HINT}`);
}

interface RunAs {
  uid: number;
  gid: number;
}

/** As root, the `postgres` system user the server must run as; otherwise undefined (run as ourselves). */
function serverUser(): RunAs | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    const uid = id('-u');
    const gid = id('-g');
    if (Number.isInteger(uid) && Number.isInteger(gid) && uid > 0) return { uid, gid };
  } catch {
    // no such user
  }
  fail(
    'postgres_unavailable',
    "running as root, PostgreSQL must run as the 'postgres' system user (initdb refuses root), and there is none: install Debian's postgresql package (`apt-get install -y postgresql`), or run as an ordinary user",
  );
}

// ---------------------------------------------------------------------------------------------
// Processes (Linux /proc, with a kill(0) fallback elsewhere)

const HAS_PROC = existsSync('/proc/self/stat');

/** Fields after "pid (comm)" in /proc/PID/stat: [state, ppid, ...]. */
function procStat(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** True while `pid` exists and is not a zombie (PID 1 of a container may never reap orphans). */
export function isProcessAlive(pid: number): boolean {
  if (HAS_PROC) {
    const state = procStat(pid)?.[0];
    return state !== undefined && state !== 'Z' && state !== 'X';
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Processes whose parent is `ppid` (the postmaster's backends and auxiliary processes). */
function childPids(ppid: number): number[] {
  if (!HAS_PROC) return [];
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    if (Number(procStat(Number(name))?.[1]) === ppid) pids.push(Number(name));
  }
  return pids;
}

/**
 * pids of live postmasters started on `dataDir` and of their children (backends, checkpointer,
 * ...), for tests that check nothing is left running. The guard is not counted.
 */
export function postgresProcessesFor(dataDir: string): number[] {
  if (!HAS_PROC) return [];
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      if (path.basename(cmdline[0] ?? '') !== 'postgres' || !cmdline.includes(dataDir)) continue;
      const pid = Number(name);
      if (isProcessAlive(pid)) pids.push(pid, ...childPids(pid).filter(isProcessAlive));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

async function waitUntil(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let pause = 10;
  while (!check()) {
    if (Date.now() >= deadline) return false;
    await delay(pause);
    pause = Math.min(pause * 2, 100);
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Leak protection

const live = new Set<Server>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const server of live) server.killNow();
  });
}

/**
 * Runs detached with a pipe from us as stdin; EOF on it means this process is gone. Then it
 * stops the postmaster named in the pid file (if it is still a postgres process), waits up to
 * 10 s for it to go and removes the temporary directory ($2, empty when it must stay).
 */
const GUARD_SCRIPT = `
read -r _ || true
pid=$(head -n 1 "$1/postmaster.pid" 2>/dev/null) || pid=
case "$pid" in ''|*[!0-9]*) pid= ;; esac
if [ -n "$pid" ] && grep -q postgres "/proc/$pid/comm" 2>/dev/null; then
  kill -QUIT "$pid" 2>/dev/null
  i=0
  while [ $i -lt 100 ] && [ -e "/proc/$pid" ] && ! grep -q ') Z ' "/proc/$pid/stat" 2>/dev/null; do sleep 0.1; i=$((i+1)); done
fi
if [ -n "$2" ]; then rm -rf -- "$2"; fi
`;

function spawnGuard(dataDir: string, removeDir: string): ChildProcess {
  const guard = spawn('sh', ['-c', GUARD_SCRIPT, 'p2pdb-postgres-guard', dataDir, removeDir], {
    stdio: ['pipe', 'ignore', 'ignore'],
    detached: true,
  });
  guard.once('error', () => undefined);
  guard.unref();
  (guard.stdin as net.Socket | null)?.unref();
  return guard;
}

// ---------------------------------------------------------------------------------------------
// Databases

const NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** URL of database `name` on the server at `serverUrl`. */
export function databaseUrlOf(serverUrl: string, name: string): string {
  const url = new URL(serverUrl);
  url.pathname = '/' + encodeURIComponent(name);
  return url.toString();
}

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 15_000 });
  client.on('error', () => undefined); // a dropped connection rejects the query in flight
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Creates a fresh, empty database on the server at `serverUrl` (a URL of any database there)
 * and returns its URL. `name` defaults to a random unique one; names are lower-case identifiers.
 */
export async function createDatabaseAt(serverUrl: string, name = `p2pdb_${randomBytes(8).toString('hex')}`, opts: { template?: string } = {}): Promise<string> {
  if (!NAME.test(name)) fail('config_invalid', `database name ${JSON.stringify(name)} is not a lower-case identifier of at most 63 characters`);
  await withClient(serverUrl, async (c) => {
    if (opts.template !== undefined) {
      // A copy of a filled database (benchmarks): nobody may be connected to the template.
      if (!NAME.test(opts.template)) fail('config_invalid', `template ${JSON.stringify(opts.template)} is not a lower-case identifier`);
      await c.query(`CREATE DATABASE ${pg.escapeIdentifier(name)} TEMPLATE ${pg.escapeIdentifier(opts.template)} STRATEGY FILE_COPY`);
      return;
    }
    // FILE_COPY checkpoints, cheap without fsync (about 140 ms against 220 ms for WAL_LOG here) but
    // seconds with it; WAL_LOG (the default) writes the copy to the WAL instead.
    const fsync = (await c.query<{ fsync: string }>('SHOW fsync')).rows[0]?.fsync;
    const strategy = fsync === 'off' ? 'FILE_COPY' : 'WAL_LOG';
    // template0: nobody can be connected to it, which CREATE DATABASE would refuse.
    await c.query(`CREATE DATABASE ${pg.escapeIdentifier(name)} TEMPLATE template0 STRATEGY ${strategy}`);
  });
  return databaseUrlOf(serverUrl, name);
}

/** Whether database `name` exists on the server. */
export async function databaseExistsAt(serverUrl: string, name: string): Promise<boolean> {
  return withClient(serverUrl, async (c) => (await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1);
}

/** Bytes on disk of database `name` (tables, indexes, TOAST, free space map, visibility map). */
export async function databaseSizeAt(serverUrl: string, name: string): Promise<number> {
  return withClient(serverUrl, async (c) => Number((await c.query<{ size: string }>('SELECT pg_database_size($1) AS size', [name])).rows[0]!.size));
}

export async function dropDatabaseAt(serverUrl: string, name: string): Promise<void> {
  if (!NAME.test(name)) fail('config_invalid', `database name ${JSON.stringify(name)} is not a lower-case identifier of at most 63 characters`);
  await withClient(serverUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`));
}

// ---------------------------------------------------------------------------------------------
// The server

function isPortClash(err: unknown): boolean {
  return err instanceof P2pdbError && err.code === 'postgres_port_in_use';
}

/** The log written since byte `from`, at most its last 4 KB. */
function logSince(file: string, from: number): string {
  try {
    const size = statSync(file).size;
    const start = Math.max(from, size - 4096);
    const fd = openSync(file, 'r');
    try {
      const buf = Buffer.alloc(size - start);
      readSync(fd, buf, 0, buf.length, start);
      return buf.toString('utf8').trim();
    } finally {
      closeSync(fd);
    }
  } catch {
    return '';
  }
}

function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/** The postmaster's pid (line 1) and status (line 8: "starting", "ready", "stopping"...). */
function readPidFile(dataDir: string): { pid?: number; status?: string } {
  try {
    const lines = readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n');
    return { pid: Number(lines[0]), status: lines[7]?.trim() };
  } catch {
    return {};
  }
}

interface ServerConfig {
  dir: string;
  ownDir: boolean;
  keepDir: boolean;
  binDir: string;
  user: RunAs | undefined;
  settings: Record<string, string>;
  timeoutMs: number;
  log: Logger;
}

class Server implements LocalPostgres {
  readonly host = '127.0.0.1' as const;
  readonly dir: string;
  readonly dataDir: string;
  readonly socketDir: string;
  readonly logFile: string;
  readonly binDir: string;
  port = 0;
  private child: ChildProcess | undefined;
  private childExit: Promise<void> | undefined;
  private guard: ChildProcess | undefined;
  private disposed = false;
  private stopping: Promise<void> | undefined;
  private starting: Promise<void> | undefined;

  constructor(private readonly cfg: ServerConfig) {
    this.dir = cfg.dir;
    this.dataDir = path.join(cfg.dir, 'data');
    this.socketDir = path.join(cfg.dir, 'sock');
    this.logFile = path.join(cfg.dir, 'postgres.log');
    this.binDir = cfg.binDir;
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  isRunning(): boolean {
    return this.child !== undefined;
  }

  databaseUrl(name: string): string {
    return databaseUrlOf(this.url, name);
  }

  createDatabase(name?: string): Promise<string> {
    return createDatabaseAt(this.url, name);
  }

  dropDatabase(name: string): Promise<void> {
    return dropDatabaseAt(this.url, name);
  }

  /** Synchronous, for the process 'exit' hook: immediate shutdown. */
  killNow(): void {
    this.child?.kill('SIGQUIT');
  }

  start(): Promise<void> {
    // Concurrent calls share one start; a call while it runs must not resolve before it is ready.
    this.starting ??= this.startOnce().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  private async startOnce(): Promise<void> {
    if (this.disposed) fail('postgres_failed', `the PostgreSQL server in ${this.dir} was stopped and its directory removed; start a new one`);
    if (this.child) return;
    installExitHook();
    live.add(this);
    if (!this.guard) this.guard = spawnGuard(this.dataDir, this.cfg.ownDir && !this.cfg.keepDir ? this.dir : '');
    const began = Date.now();
    const from = fileSize(this.logFile);
    const args = ['-D', this.dataDir, '-p', String(this.port), '-k', this.socketDir, '-c', 'listen_addresses=127.0.0.1'];
    for (const [name, value] of Object.entries(this.cfg.settings)) args.push('-c', `${name}=${value}`);
    const out = openSync(this.logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(path.join(this.binDir, 'postgres'), args, {
        cwd: this.dir,
        stdio: ['ignore', out, out],
        env: { ...process.env, LC_ALL: 'C' },
        ...(this.cfg.user ? { uid: this.cfg.user.uid, gid: this.cfg.user.gid } : {}),
      });
    } finally {
      closeSync(out);
    }
    let exitNote: string | undefined;
    const exited = new Promise<void>((resolve) => {
      child.once('error', (err) => {
        exitNote ??= `could not run ${path.join(this.binDir, 'postgres')}: ${err.message}`;
        resolve();
      });
      child.once('exit', (code, signal) => {
        exitNote ??= `postgres exited with ${signal ?? `code ${code}`}`;
        resolve();
      });
    });
    this.child = child;
    this.childExit = exited.then(() => {
      if (this.child === child) this.child = undefined;
    });
    try {
      await this.waitReady(child, () => exitNote, from);
    } catch (err) {
      child.kill('SIGKILL');
      await this.childExit;
      throw err;
    }
    // A server someone forgot to stop must not keep the process alive; the exit hook stops it.
    child.unref();
    this.cfg.log.info('postgres: accepting connections', { port: this.port, dataDir: this.dataDir, pid: child.pid, ms: Date.now() - began });
  }

  /** Until the server on our port answers for our data directory, or our postgres exits. */
  private async waitReady(child: ChildProcess, exitNote: () => string | undefined, logFrom: number): Promise<void> {
    const deadline = Date.now() + this.cfg.timeoutMs;
    const ours = realpathSync(this.dataDir);
    let pause = 20;
    let last = '';
    for (;;) {
      const note = exitNote();
      if (note !== undefined || child.pid === undefined) {
        await this.childExit;
        const tail = logSince(this.logFile, logFrom);
        // Another process bound the port between our probe and postgres's bind: retryable.
        const clash = /could not bind IPv4 address "127\.0\.0\.1": Address already in use|could not create any TCP\/IP sockets/.test(tail);
        fail(clash ? 'postgres_port_in_use' : 'postgres_failed', `PostgreSQL (port ${this.port}, ${this.dataDir}) did not start: ${note ?? 'spawn failed'}\n${tail}`);
      }
      // What pg_ctl -w waits for: our postmaster's pid file says "ready" (sockets bound, recovery
      // done). Only then connect, so a foreign server that took the port is never waited on.
      const pidFile = readPidFile(this.dataDir);
      if (pidFile.pid !== child.pid) {
        last = 'no postmaster.pid of ours yet';
      } else if (pidFile.status !== 'ready') {
        last = `postmaster.pid status ${JSON.stringify(pidFile.status ?? '')}`;
      } else {
        const answer = withClient(`postgres://postgres@127.0.0.1:${this.port}/postgres`, async (c) => {
          const r = await c.query<{ data_directory: string }>('SHOW data_directory');
          return r.rows[0]?.data_directory ?? '';
        });
        answer.catch(() => undefined);
        try {
          const dataDir = await Promise.race([answer, this.childExit!.then(() => undefined)]);
          if (dataDir !== undefined && realpathSync(dataDir) === ours) return;
          if (dataDir !== undefined) last = `port ${this.port} answered for ${dataDir}`;
        } catch (err) {
          last = (err as Error).message;
        }
      }
      if (Date.now() > deadline) {
        fail('postgres_failed', `PostgreSQL (port ${this.port}, ${this.dataDir}) did not accept connections within ${this.cfg.timeoutMs} ms (${last})\n${logSince(this.logFile, logFrom)}`);
      }
      await delay(pause);
      pause = Math.min(pause * 2, 200);
    }
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    return this.halt(signal);
  }

  /**
   * Signals the postmaster and waits until it and its former children are gone (a backend
   * still attached to the old shared memory would make the next start refuse). Escalates to
   * SIGQUIT then SIGKILL when the signal is not enough within 30 s.
   */
  private async halt(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (!child || child.pid === undefined) return;
    child.ref();
    const children = childPids(child.pid);
    child.kill(signal);
    const gone = () => !this.child || this.child !== child;
    if (!(await waitUntil(gone, 30_000))) {
      this.cfg.log.warn('postgres: no exit within 30 s; immediate shutdown', { pid: child.pid, signal });
      child.kill('SIGQUIT');
      if (!(await waitUntil(gone, 10_000))) child.kill('SIGKILL');
    }
    await this.childExit;
    // After a postmaster crash its backends notice and exit on their own, normally at once.
    if (!(await waitUntil(() => !children.some(isProcessAlive), 10_000))) {
      for (const pid of children.filter(isProcessAlive)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
      }
      await waitUntil(() => !children.some(isProcessAlive), 10_000);
    }
  }

  stop(opts: { keep?: boolean } = {}): Promise<void> {
    if (opts.keep) return this.halt('SIGINT');
    this.stopping ??= (async () => {
      try {
        await this.halt('SIGINT');
      } finally {
        await this.dispose();
      }
    })();
    return this.stopping;
  }

  private async dispose(): Promise<void> {
    this.disposed = true;
    live.delete(this);
    this.guard?.kill('SIGKILL');
    this.guard = undefined;
    if (this.cfg.ownDir && !this.cfg.keepDir) await rm(this.dir, { recursive: true, force: true });
  }
}

async function initCluster(binDir: string, dataDir: string, user: RunAs | undefined, cwd: string, sync: boolean): Promise<void> {
  const args = ['-D', dataDir, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--no-instructions'];
  if (!sync) args.push('--no-sync');
  const child = spawn(path.join(binDir, 'initdb'), args, {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, LC_ALL: 'C' },
    ...(user ? { uid: user.uid, gid: user.gid } : {}),
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const result = await new Promise<string | undefined>((resolve) => {
    child.once('error', (err) => resolve(err.message));
    child.once('close', (code, signal) => resolve(code === 0 ? undefined : `exited with ${signal ?? `code ${code}`}`));
  });
  if (result !== undefined) {
    const hint = user ? ' (as root it runs as the postgres user: the directory and all its parents must be traversable by that user)' : '';
    fail('postgres_failed', `initdb ${dataDir} failed: ${result}${hint}\n${output.trim().slice(-2000)}`);
  }
}

/**
 * Starts a throwaway PostgreSQL server (see the module comment) and resolves once it accepts
 * connections on 127.0.0.1. Call stop() when done; the process exit hook and the guard are
 * only a safety net.
 */
export async function startLocalPostgres(opts: LocalPostgresOptions = {}): Promise<LocalPostgres> {
  const log = opts.log ?? silentLogger;
  const binDir = findPostgresBinDir(opts.binDir);
  const user = serverUser();
  for (const name of Object.keys(opts.settings ?? {})) {
    if (RESERVED.has(name)) fail('config_invalid', `the local PostgreSQL server sets ${name} itself (it listens on 127.0.0.1 and its own socket only)`);
    if (!/^[a-z_][a-z0-9_.]*$/.test(name)) fail('config_invalid', `${JSON.stringify(name)} is not a PostgreSQL setting name`);
  }
  const fsync = opts.fsync ?? true;
  const settings: Record<string, string> = {
    ...DEFAULT_SETTINGS,
    ...(fsync ? {} : { fsync: 'off', full_page_writes: 'off', synchronous_commit: 'off' }),
    ...opts.settings,
  };
  const ownDir = opts.dir === undefined;
  const dir = opts.dir !== undefined ? path.resolve(opts.dir) : await mkdtemp(path.join(tmpdir(), 'p2pdb-pg-'));
  const keepDir = Boolean(opts.keepDir || process.env.P2PDB_KEEP_TMP);
  const server = new Server({ dir, ownDir, keepDir, binDir, user, settings, timeoutMs: opts.timeoutMs ?? 120_000, log });
  try {
    // The socket path (DIR/sock/.s.PGSQL.NNNNN) must fit in sockaddr_un (107 bytes).
    if (Buffer.byteLength(path.join(server.socketDir, '.s.PGSQL.65535')) > 107) {
      fail('config_invalid', `${dir} is too long a path for PostgreSQL's unix socket; use a shorter directory`);
    }
    await mkdir(server.socketDir, { recursive: true });
    if (user) {
      for (const p of [dir, server.socketDir]) await chown(p, user.uid, user.gid);
    }
    if (!existsSync(path.join(server.dataDir, 'PG_VERSION'))) {
      const began = Date.now();
      // A throwaway cluster need not be flushed to disk by initdb; a kept one must.
      await initCluster(binDir, server.dataDir, user, dir, fsync && !ownDir);
      log.info('postgres: initdb', { dataDir: server.dataDir, ms: Date.now() - began });
    }
    for (let attempt = 1; ; attempt++) {
      server.port = opts.port ?? (await freePort());
      try {
        await server.start();
        return server;
      } catch (err) {
        if (!isPortClash(err) || opts.port !== undefined || attempt >= 4) throw err;
        log.warn('postgres: port taken before the server bound it; retrying on another', { port: server.port, attempt });
      }
    }
  } catch (err) {
    await server.stop().catch(() => undefined);
    if (ownDir && !keepDir) await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
