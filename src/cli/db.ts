/**
 * `p2pdb db copy --to TARGET`: moves a stopped node's data to another database (SQLite ↔
 * PostgreSQL, or another SQLite file), resumable, verified at the end. The copy itself lives
 * in src/store/copy/; this file finds the source, refuses a running node, and shows progress.
 */
import { P2pdbError } from '../errors.js';
import type { CopyProgress } from '../store/copy/copy.js';
import { UsageError, expectPositionals, flag, nodeDataDir, parse, positiveInt, println, str, type CliIo, type Command, type OutStream } from './context.js';

const USAGE = `usage: p2pdb db copy --to TARGET [--data DIR] [--database SOURCE] [--batch N] [--limit N]

Copies the node's data to another database while the node is stopped: SQLite → PostgreSQL,
PostgreSQL → SQLite, or to another SQLite file. Entries keep their seq, receive time and every
byte (clients' cursors and --since mean the same afterwards); table counts, peers and sync
state come along. Then point the node at TARGET (--database, $P2PDB_DATABASE or "database" in
DIR/config.json) and start it.

Refused while the node runs (a SQLite file another process has open, a PostgreSQL database a
node is connected to, or the node answering on its port or control listener), when TARGET is
the source, and when TARGET holds anything but a part of this node's data. Interrupted
(Ctrl-C, kill), the same command continues where the target stands. At the end both databases
are walked on their own: entry counts, per-table counts and per-table sync fingerprints must
match, or the command fails.

options:
  --to TARGET        postgres://USER@HOST/DB, or a SQLite file path (relative to DIR)
  --data DIR         the node's data directory (default: $P2PDB_DATA or ./data)
  --database SOURCE  the node's database, if not the one its config names (default:
                     $P2PDB_DATABASE, "database" in DIR/config.json, else DIR/p2pdb.sqlite)
  --batch N          entries per transaction (default 5000)
  --limit N          copy at most N entries in this run, then stop (run again to continue)
  -h, --help         show this help

Progress goes to stderr; the result, ending with a "verified: …" line, to stdout.`;

const USAGE_DB = `usage: p2pdb db copy --to TARGET [--data DIR] [--database SOURCE]

  copy   copy the node's data to another database (SQLite ↔ PostgreSQL), resumable and verified

Run 'p2pdb db copy --help' for its options.`;

function duration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  return s < 120 ? `${Math.ceil(s)} s` : s < 7200 ? `${Math.ceil(s / 60)} min` : `${(s / 3600).toFixed(1)} h`;
}

/** One line of progress: bar, counts, rate and ETA of this run. Pure. */
export function copyProgressLine(p: CopyProgress, elapsedMs: number, width = 24): string {
  const verifying = p.phase !== 'copying';
  const done = verifying ? p.verified : p.copied;
  const of = verifying ? 2 * p.total : p.total;
  const fraction = of > 0 ? Math.min(1, done / of) : 1;
  const filled = Math.round(fraction * width);
  const thisRun = verifying ? p.verified : p.copied - p.resumedFrom;
  const rate = elapsedMs > 0 ? (thisRun * 1000) / elapsedMs : 0;
  const eta = done >= of ? 0 : rate > 0 ? (of - done) / rate : Infinity;
  const what = verifying ? `verifying ${p.verified}/${of} ids walked` : `copied ${p.copied}/${p.total} entries`;
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${String(Math.floor(fraction * 100)).padStart(3)}% ${what}  ${Math.round(rate)}/s  ETA ${duration(eta)}`;
}

/**
 * Progress on stderr: one line redrawn at most 10 times a second on a terminal, else a plain
 * line at most every second; each phase (copying, verifying) ends with its final state shown.
 */
function progressPrinter(out: OutStream): { show(p: CopyProgress): void; end(): void } {
  const tty = out.isTTY === true;
  let current: { p: CopyProgress; started: number; shown: boolean } | undefined;
  let lastShown = 0;
  const draw = (final: boolean) => {
    if (!current || current.shown) return;
    const line = copyProgressLine(current.p, Date.now() - current.started);
    if (tty) out.write(`\r${line}\x1b[K${final ? '\n' : ''}`);
    else println(out, line);
    current.shown = true;
    lastShown = Date.now();
  };
  return {
    show(p) {
      if (current && current.p.phase !== p.phase) {
        current.shown = current.shown && !tty; // a terminal redraws the phase's last state, then a new line
        draw(true);
        current = undefined;
      }
      if (p.phase === 'done') return;
      current = { p, started: current?.started ?? Date.now(), shown: false };
      if (Date.now() - lastShown >= (tty ? 100 : 1000)) draw(false);
    },
    end() {
      if (current) {
        current.shown = current.shown && !tty;
        draw(true);
      }
      current = undefined;
    },
  };
}

async function copy(args: string[], io: CliIo): Promise<number> {
  const p = parse('db', args, { to: { type: 'string' }, data: { type: 'string' }, database: { type: 'string' }, batch: { type: 'string' }, limit: { type: 'string' } });
  if (flag(p, 'help')) {
    println(io.stdout, USAGE);
    return 0;
  }
  expectPositionals('db', p, 0, 0, 'no arguments after "copy" (the target is --to TARGET)');
  const to = str(p, 'to');
  if (to === undefined || to.trim() === '') throw new UsageError('--to TARGET is required (postgres://… or a SQLite file)', 'db');
  const batch = positiveInt('db', str(p, 'batch'), '--batch', 100_000);
  const limit = positiveInt('db', str(p, 'limit'), '--limit');
  const dataDir = nodeDataDir(io, str(p, 'data'));

  // Loaded here: other commands should not pay for the store.
  const [{ loadConfig }, { databaseOf }, { parseDatabase }, { runningNode }, { copyDatabase }] = await Promise.all([
    import('../config/config.js'),
    import('../node/node.js'),
    import('../store/database-locator.js'),
    import('../node/liveness.js'),
    import('../store/copy/copy.js'),
  ]);
  const database = str(p, 'database');
  const config = loadConfig({ flags: { dataDir, ...(database !== undefined ? { database } : {}) }, env: io.env });
  const source = databaseOf(config);
  const target = parseDatabase(to, dataDir);
  const alive = await runningNode(config, io.fetch as (url: string, init?: RequestInit) => Promise<Response>);
  if (alive) throw new P2pdbError('node_running', `the node of ${dataDir} is running (${alive}); stop it first`);

  const stop = new AbortController();
  void io.stopSignal().then(() => stop.abort());
  const progress = progressPrinter(io.stderr);
  let result;
  try {
    result = await copyDatabase({
      source,
      target,
      signal: stop.signal,
      onProgress: (pr) => progress.show(pr),
      ...(batch !== undefined ? { batchEntries: batch } : {}),
      ...(limit !== undefined ? { limit } : {}),
    });
  } finally {
    progress.end();
  }
  const seconds = result.copyMs / 1000;
  const rate = seconds > 0 ? Math.round(result.copied / seconds) : 0;
  println(
    io.stdout,
    `copied ${result.copied} entries${result.resumedFrom > 0 ? ` (continuing after the ${result.resumedFrom} already there)` : ''} from ${result.source} to ${result.target} in ${seconds.toFixed(1)} s (${rate} entries/s)`,
  );
  if (!result.complete) {
    println(io.stdout, `stopped at --limit: ${result.resumedFrom + result.copied} of ${result.total} entries in the target; run the same command again to continue`);
    return 0;
  }
  println(io.stdout, `verified: ${result.total} entries, ${result.tables} tables, fingerprints match (${(result.verifyMs / 1000).toFixed(1)} s)`);
  return 0;
}

export const dbCommand: Command = {
  name: 'db',
  summary: "the node's database: copy it to another one (SQLite ↔ PostgreSQL)",
  usage: USAGE,
  async run(args, io) {
    const [sub, ...rest] = args;
    if (sub === undefined || sub === '--help' || sub === '-h') {
      println(sub === undefined ? io.stderr : io.stdout, `${USAGE_DB}\n\n${USAGE}`);
      return sub === undefined ? 2 : 0;
    }
    if (sub === 'copy') return copy(rest, io);
    throw new UsageError(`unknown db command ${JSON.stringify(sub)} (known: copy)`, 'db');
  },
};
