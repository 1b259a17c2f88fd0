/** `p2pdb pair`: a link (and QR code) that gives a browser app a table key and a recipient key. */
import QRCode from 'qrcode';
import { P2pdbError, fail } from '../errors.js';
import { readNodeStatus, statusLiveness, type NodeStatus } from '../node/status-file.js';
import { pairingLink } from '../client/pairing.js';
import { addClient, readClients } from '../identity/client-auth.js';
import { assertOnionUrl } from '../tor/socks.js';
import {
  COMMON_CLIENT_HELP,
  NODE_OPTION,
  UsageError,
  expectPositionals,
  flag,
  nodeApi,
  nodeDataDir,
  openKeyring,
  parse,
  println,
  str,
  type CliIo,
  type Command,
} from './context.js';

const USAGE = `usage: p2pdb pair --table T [--recipient R] [--label TEXT] [--onion ADDR | --url URL] [--data DIR] [--client NAME] [--no-qr]

Prints a link to the node's browser app that carries the private keys of table T (to write)
and of recipient R (to read what is addressed to R) in its fragment (the part after '#',
which browsers never send to a server), and the same link as a QR code for a phone's
Tor Browser. Anyone who sees the link or the QR code gets those keys: show it only to the
device you pair, never paste it into a chat or a web form.

options:
  --table T        a key in the keyring whose private key we hold
  --recipient R    also pair this key (the keyring must hold its private key)
  --label TEXT     a name the browser shows for the pairing
  --onion ADDR     the node's onion address (default: DATA/status.json of the running node,
                   else the node's /hello/; a node without Tor gives its own URL, which only
                   a browser on this machine can open, and says so)
  --url URL        any other origin for the link instead (e.g. http://127.0.0.1:8733 to pair
                   a browser on this machine)
  --data DIR       the node's data dir, for status.json (default: $P2PDB_DATA or ./data)
  --client NAME    the node is private (p2pdb clients): authorize a new client NAME for this
                   device and print its key, which Tor Browser asks for when it opens the
                   link (same as 'p2pdb clients add NAME')
  --no-qr          print the link only
${COMMON_CLIENT_HELP}`;

/** The origin the link points at: --url, --onion, the node's status file, or its /hello/. */
async function linkOrigin(io: CliIo, p: ReturnType<typeof parse>): Promise<string> {
  const url = str(p, 'url');
  const onion = str(p, 'onion');
  if (url !== undefined && onion !== undefined) throw new UsageError('give --onion or --url, not both', 'pair');
  if (url !== undefined) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new UsageError(`--url ${JSON.stringify(url)} is not a URL`, 'pair');
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new UsageError('--url must be http:// or https://', 'pair');
    return parsed.origin;
  }
  if (onion !== undefined) return originOfOnion(onion);
  const dataDir = nodeDataDir(io, str(p, 'data'));
  const status = readNodeStatus(dataDir);
  const liveness = status ? statusLiveness(status) : undefined;
  if (status?.onion && (liveness === 'running' || liveness === 'unknown')) return originOfOnion(status.onion);
  const api = nodeApi(io, p);
  let reachable = false;
  let unreachable: P2pdbError | undefined;
  try {
    const hello = await api.hello();
    reachable = true;
    if (hello.onion) return originOfOnion(hello.onion);
  } catch (e) {
    if (!(e instanceof P2pdbError)) throw e;
    unreachable = e;
  }
  if (status?.onion) {
    // The address is the node's key, so it stays right; it only works while the node runs.
    println(io.stderr, `note: ${onionNote(status, liveness!)}: the link will work once that node runs again with Tor`);
    if (reachable) println(io.stderr, `      (the node at ${api.baseUrl} runs without Tor: --url ${new URL(api.baseUrl).origin} pairs a browser on this machine with it)`);
    return originOfOnion(status.onion);
  }
  if (reachable) {
    // The README's own node (npm start) runs without Tor: point at it, and say what that means.
    const origin = new URL(api.baseUrl).origin;
    println(io.stderr, `note: the node at ${origin} runs without Tor, so the link opens its app there: only a browser on this machine can follow it.`);
    println(io.stderr, '      For a phone (Tor Browser), run the node with --tor managed, or give --onion ADDR.');
    return origin;
  }
  fail(
    'node_unreachable',
    `no node to point the link at: ${unreachable!.message}, and ${dataDir} holds no status.json of a node with Tor; ` +
      'start the node (npm start), or give --url http://127.0.0.1:8733 (a browser on this machine) or --onion ADDR',
  );
}

/** Why the onion in status.json may not answer now. */
function onionNote(status: NodeStatus, liveness: ReturnType<typeof statusLiveness>): string {
  const when = new Date(status.stopped_at ?? status.updated_at).toISOString().replace(/\.\d+Z$/, 'Z');
  return liveness === 'stopped'
    ? `the onion ${status.onion} comes from the status file of a node that stopped at ${when}`
    : `the onion ${status.onion} comes from the status file of a node that is not running (process ${status.pid} is gone; last update ${when})`;
}

/**
 * A private node's onion opens only with a client key: with --client NAME one is made for this
 * device and printed (Tor Browser asks for it); without, a note says how to get one.
 */
async function privateNodeKey(io: CliIo, p: ReturnType<typeof parse>, origin: string): Promise<void> {
  const dataDir = nodeDataDir(io, str(p, 'data'));
  const name = str(p, 'client');
  const onion = /^http:\/\/([a-z2-7]{56}\.onion)$/.exec(origin)?.[1];
  if (name !== undefined) {
    if (!onion) throw new UsageError('--client needs the link to point at the node\'s onion', 'pair');
    const pair = await addClient(dataDir, name);
    println(io.stdout);
    println(io.stdout, `Tor Browser key for ${onion} (paste it when Tor Browser asks for the onion's key):`);
    println(io.stdout, pair.privateKey);
    println(io.stderr, `authorized client ${name}: a running node re-publishes its onion with this key within seconds (p2pdb clients list / remove).`);
    return;
  }
  const clients = await readClients(dataDir).catch(() => []);
  if (onion && clients.length > 0) {
    println(io.stderr, `note: this node is private (${clients.length} authorized client key${clients.length === 1 ? '' : 's'}): Tor Browser needs a client key to open the link.`);
    println(io.stderr, "      Run 'p2pdb pair … --client NAME' (or 'p2pdb clients add NAME') and paste the key when Tor Browser asks.");
  }
}

function originOfOnion(onion: string): string {
  const host = onion.replace(/^https?:\/\//, '').replace(/\/+$/, '');
  return assertOnionUrl(`http://${host.endsWith('.onion') ? host : `${host}.onion`}/`).url.origin;
}

export const pairCommand: Command = {
  name: 'pair',
  summary: 'print a link and QR code that pair a browser with a table (carries private keys)',
  usage: USAGE,
  async run(args: string[], io: CliIo): Promise<number> {
    const p = parse('pair', args, {
      ...NODE_OPTION,
      table: { type: 'string' },
      recipient: { type: 'string' },
      label: { type: 'string' },
      onion: { type: 'string' },
      url: { type: 'string' },
      data: { type: 'string' },
      client: { type: 'string' },
      'no-qr': { type: 'boolean' },
    });
    if (flag(p, 'help')) {
      println(io.stdout, USAGE);
      return 0;
    }
    expectPositionals('pair', p, 0, 0, 'no positional arguments');
    const tableRef = str(p, 'table');
    if (!tableRef) throw new UsageError('--table is required', 'pair');
    const origin = await linkOrigin(io, p);

    const keyring = await openKeyring(io);
    const table = keyring.resolve(tableRef);
    if (!table.hasPrivate) fail('key_not_found', `cannot pair table ${table.name}: the keyring has only its public key`);
    const recipientRef = str(p, 'recipient');
    const recipient = recipientRef === undefined ? undefined : keyring.resolve(recipientRef);
    if (recipient && !recipient.hasPrivate) fail('key_not_found', `cannot pair recipient ${recipient.name}: the keyring has only its public key`);
    const label = str(p, 'label');

    const link = pairingLink(origin, {
      table: (await keyring.privateKey(table.name)).export({ format: 'jwk' }),
      ...(recipient ? { recipient: (await keyring.privateKey(recipient.name)).export({ format: 'jwk' }) } : {}),
      ...(label !== undefined ? { label } : {}),
    });

    const what = recipient ? `table ${table.name} and recipient ${recipient.name}` : `table ${table.name}`;
    println(io.stderr, `WARNING: this link carries the private keys of ${what}.`);
    println(io.stderr, '         Whoever sees it (or scans the QR code) can write to the table' + (recipient ? ' and read what is addressed to the recipient.' : '.'));
    println(io.stdout, link);
    if (!flag(p, 'no-qr')) {
      println(io.stdout);
      // On a terminal, black on white with colour codes (readable on dark themes too); into a
      // file or a pipe, plain block characters: escape codes would be noise there.
      const qr = io.stdout.isTTY ? await QRCode.toString(link, { type: 'terminal', small: true }) : await QRCode.toString(link, { type: 'utf8' });
      io.stdout.write(qr);
    }
    await privateNodeKey(io, p, origin);
    return 0;
  },
};
