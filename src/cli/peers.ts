/**
 * `p2pdb peers …`: the node's peer table, edited in its data directory. There is no admin
 * endpoint on the HTTP port (it is published as the onion service); a running node picks
 * changes up at its next peering round.
 */
import { existsSync } from 'node:fs';
import { fail } from '../errors.js';
import type { PeerRecord, PeerTable } from '../store/peer-table.js';
import { UsageError, expectPositionals, flag, parse, println, str, nodeDataDir, type CliIo, type Command, type OptionSpec } from './context.js';

const USAGE = `usage:
  p2pdb peers add ONION       add a peer (its onion address, or http://ADDRESS.onion/)
  p2pdb peers list            list known peers
  p2pdb peers remove ONION    forget a peer

A running node greets added peers at its next round. Peers it learns from others stay
unverified until it has reached them itself.

options:
  --data DIR   the node's data directory (default: $P2PDB_DATA or ./data)
  -h, --help   show this help`;

const OPTIONS: OptionSpec = { data: { type: 'string' } };

function help(io: CliIo): number {
  println(io.stdout, USAGE);
  return 0;
}

/** The node's database (its config file and $P2PDB_DATABASE say which), by the node's own rule. */
async function nodeDatabase(io: CliIo, dataOption: string | undefined) {
  const dataDir = nodeDataDir(io, dataOption);
  // Loaded lazily like serve does: other commands should not pay for the store.
  const [{ loadConfig }, { databaseOf }] = await Promise.all([import('../config/config.js'), import('../node/node.js')]);
  return databaseOf(loadConfig({ flags: { dataDir }, env: io.env }));
}

async function withPeers<T>(database: Awaited<ReturnType<typeof nodeDatabase>>, fn: (peers: PeerTable) => Promise<T>): Promise<T> {
  const { openStore } = await import('../store/open.js');
  const store = await openStore({ database, durability: 'normal' });
  try {
    return await fn(store.peers());
  } finally {
    await store.close();
  }
}

/** A SQLite file that is not there holds no peers (and is not created just to say so). */
function exists(database: Awaited<ReturnType<typeof nodeDatabase>>): boolean {
  return database.kind === 'postgres' || existsSync(database.filename);
}

async function onionArgument(value: string): Promise<string> {
  const { normalizeOnion } = await import('../peers/hello.js');
  return normalizeOnion(value) ?? fail('malformed', `not a v3 onion address: ${value.slice(0, 100)}`);
}

function time(ms: number | null): string {
  return ms === null ? '-' : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function tablesText(t: PeerRecord['tables']): string {
  if (t === null) return '?';
  if (t === '*') return '*';
  return `${t.length} table${t.length === 1 ? '' : 's'}`;
}

export function formatPeers(peers: readonly PeerRecord[]): string[] {
  const rows = [
    ['ONION', 'TABLES', 'VERIFIED', 'LAST_SEEN', 'FAILURES', 'SOURCE'],
    ...peers.map((p) => [p.onion, tablesText(p.tables), p.verified ? 'yes' : 'no', time(p.lastSeen), String(p.failures), p.source]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  '));
}

async function peersAdd(args: string[], io: CliIo): Promise<number> {
  const p = parse('peers', args, OPTIONS);
  if (flag(p, 'help')) return help(io);
  const [value] = expectPositionals('peers', p, 1, 1, 'an onion address: p2pdb peers add ONION');
  const onion = await onionArgument(value!);
  const database = await nodeDatabase(io, str(p, 'data'));
  const result = await withPeers(database, (peers) => peers.add(onion, 'manual', Date.now()));
  println(io.stdout, result === 'added' ? `added ${onion}` : `${onion} was already known (now kept as a manual peer)`);
  return 0;
}

async function peersList(args: string[], io: CliIo): Promise<number> {
  const p = parse('peers', args, OPTIONS);
  if (flag(p, 'help')) return help(io);
  expectPositionals('peers', p, 0, 0, 'no arguments: p2pdb peers list');
  const database = await nodeDatabase(io, str(p, 'data'));
  // Listing must not create a database where there is none.
  const peers = exists(database) ? await withPeers(database, (table) => table.list()) : [];
  if (peers.length === 0) {
    println(io.stderr, `no peers in ${database.kind === 'sqlite' ? database.filename : 'the database'}; add one with: p2pdb peers add ONION`);
    return 0;
  }
  for (const line of formatPeers(peers)) println(io.stdout, line);
  return 0;
}

async function peersRemove(args: string[], io: CliIo): Promise<number> {
  const p = parse('peers', args, OPTIONS);
  if (flag(p, 'help')) return help(io);
  const [value] = expectPositionals('peers', p, 1, 1, 'an onion address: p2pdb peers remove ONION');
  const onion = await onionArgument(value!);
  const database = await nodeDatabase(io, str(p, 'data'));
  const removed = exists(database) && (await withPeers(database, (peers) => peers.remove(onion)));
  if (!removed) fail('not_found', `${onion} is not a known peer`);
  println(io.stdout, `removed ${onion}`);
  return 0;
}

const SUBCOMMANDS: Record<string, (args: string[], io: CliIo) => Promise<number>> = {
  add: peersAdd,
  list: peersList,
  remove: peersRemove,
};

export const peersCommand: Command = {
  name: 'peers',
  summary: "add, list and remove the node's peers (works on its data directory)",
  usage: USAGE,
  async run(args, io) {
    const [sub, ...rest] = args;
    if (sub === undefined || sub === '--help' || sub === '-h') {
      println(sub === undefined ? io.stderr : io.stdout, USAGE);
      return sub === undefined ? 2 : 0;
    }
    const fn = SUBCOMMANDS[sub];
    if (!fn) throw new UsageError(`unknown peers command ${JSON.stringify(sub)} (add, list, remove)`, 'peers');
    return fn(rest, io);
  },
};
