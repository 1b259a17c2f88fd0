/** `p2pdb clients …`: the x25519 keys allowed to reach a private node (Tor v3 client authorization). */
import { addClient, clientAuthLine, clientsFile, readClients, removeClient } from '../identity/client-auth.js';
import { loadOrCreateIdentity } from '../identity/identity-file.js';
import { readNodeStatus, statusLiveness } from '../node/status-file.js';
import { UsageError, expectPositionals, flag, nodeDataDir, parse, println, str, type CliIo, type Command } from './context.js';

const USAGE = `usage:
  p2pdb clients add NAME [--data DIR]                  authorize a new client; prints its private key once
  p2pdb clients list [--data DIR]                      the authorized clients (no secrets)
  p2pdb clients remove NAME [--make-public] [--data DIR]  revoke a client's key

A node with at least one authorized client is PRIVATE: it publishes its onion with Tor's v3
client authorization, so only a tor holding one of the clients' private keys can reach it
(peers that sync with it too). The node keeps only the public keys, in DATA/identity/clients.json
(mode 0600); 'add' prints the private key once and never stores it.

A running node follows the file and re-publishes its onion (same address) within seconds of
a change; a node started later reads it at start.

options:
  --data DIR      the node's data dir (default: $P2PDB_DATA or ./data)
  --make-public   allow removing the last client, which makes the node public again
  -h, --help      show this help`;

function help(io: CliIo): number {
  println(io.stdout, USAGE);
  return 0;
}

/** What happens to a running node, in words. */
function whenApplied(dataDir: string): string {
  const status = readNodeStatus(dataDir);
  const running = status && (statusLiveness(status) === 'running' || statusLiveness(status) === 'unknown');
  return running
    ? 'the running node re-publishes its onion with the new key set within a few seconds (no restart needed)'
    : 'the node uses the new key set when it next starts';
}

async function clientsAdd(args: string[], io: CliIo): Promise<number> {
  const p = parse('clients', args, { data: { type: 'string' } });
  if (flag(p, 'help')) return help(io);
  const [name] = expectPositionals('clients', p, 1, 1, 'a client NAME: p2pdb clients add NAME');
  const dataDir = nodeDataDir(io, str(p, 'data'));
  const { identity } = await loadOrCreateIdentity(dataDir);
  const before = (await readClients(dataDir)).length;
  const pair = await addClient(dataDir, name!);
  println(io.stdout, `client        ${name}`);
  println(io.stdout, `onion         ${identity.address}`);
  println(io.stdout, `private key   ${pair.privateKey}`);
  println(io.stdout, `auth line     ${clientAuthLine(identity.address, pair.privateKey)}`);
  println(io.stderr, '');
  println(io.stderr, `Give ${name} the private key over a private channel. It is shown only now: p2pdb keeps only the public half.`);
  println(io.stderr, '  Tor Browser: open the onion; when it asks for the key, paste the "private key" above.');
  println(io.stderr, '  tor (ClientOnionAuthDir DIR in its torrc): put the "auth line" above in DIR/<any name>.auth_private,');
  println(io.stderr, '      then restart or reload (SIGHUP) that tor.');
  if (before === 0) println(io.stderr, 'This node is now PRIVATE: only tors holding an authorized client key can reach it, peers included.');
  println(io.stderr, `${capitalise(whenApplied(dataDir))}.`);
  return 0;
}

async function clientsList(args: string[], io: CliIo): Promise<number> {
  const p = parse('clients', args, { data: { type: 'string' } });
  if (flag(p, 'help')) return help(io);
  expectPositionals('clients', p, 0, 0, 'no arguments: p2pdb clients list');
  const dataDir = nodeDataDir(io, str(p, 'data'));
  const clients = await readClients(dataDir);
  if (clients.length === 0) {
    println(io.stderr, `no authorized clients in ${clientsFile(dataDir)}: the node is public (anyone with its address can reach it)`);
    return 0;
  }
  println(io.stderr, `${clients.length} authorized client${clients.length === 1 ? '' : 's'}: the node is private`);
  const width = Math.max(...clients.map((c) => c.name.length));
  for (const c of clients) {
    println(io.stdout, `${c.name.padEnd(width)}  added ${new Date(c.addedAt).toISOString().replace(/\.\d+Z$/, 'Z')}  public key ${c.publicKey}`);
  }
  return 0;
}

async function clientsRemove(args: string[], io: CliIo): Promise<number> {
  const p = parse('clients', args, { data: { type: 'string' }, 'make-public': { type: 'boolean' } });
  if (flag(p, 'help')) return help(io);
  const [name] = expectPositionals('clients', p, 1, 1, 'a client NAME: p2pdb clients remove NAME');
  const dataDir = nodeDataDir(io, str(p, 'data'));
  const { remaining } = await removeClient(dataDir, name!, { makePublic: flag(p, 'make-public') });
  println(io.stdout, `removed client ${name}; ${remaining} remain${remaining === 1 ? 's' : ''}${remaining === 0 ? ': the node is PUBLIC again' : ''}`);
  println(io.stderr, `${capitalise(whenApplied(dataDir))}; from then on ${name}'s key no longer opens the onion.`);
  return 0;
}

export const clientsCommand: Command = {
  name: 'clients',
  summary: 'manage the client keys of a private node (Tor client authorization)',
  usage: USAGE,
  async run(args: string[], io: CliIo): Promise<number> {
    const [sub, ...rest] = args;
    if (sub === undefined || sub === '--help' || sub === '-h') return sub === undefined ? (println(io.stderr, USAGE), 2) : help(io);
    if (sub === 'add') return clientsAdd(rest, io);
    if (sub === 'list') return clientsList(rest, io);
    if (sub === 'remove' || sub === 'rm') return clientsRemove(rest, io);
    throw new UsageError(`unknown clients subcommand ${JSON.stringify(sub)} (add, list, remove)`, 'clients');
  },
};

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
