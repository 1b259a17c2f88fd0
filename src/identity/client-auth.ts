/**
 * Private nodes: Tor's v3 client authorization. The node keeps, in DATA/identity/clients.json
 * (0600, replaced atomically), the x25519 PUBLIC keys of the clients allowed to reach it, each
 * under a name; it publishes its onion with `ClientAuthV3=<key>` for each, so its descriptor can
 * only be decrypted by a tor holding one of the matching private keys. The private key is made
 * by `p2pdb clients add`, printed once to the operator and never stored by the node.
 *
 * Keys are base32 (RFC 4648 alphabet, no padding): 52 characters for 32 bytes, as tor writes
 * them in ClientOnionAuthDir files (`<onion>:descriptor:x25519:<private key>`) and as Tor
 * Browser asks for them.
 */
import { constants } from 'node:fs';
import { chmod, lstat, mkdir, open } from 'node:fs/promises';
import { generateKeyPairSync } from 'node:crypto';
import path from 'node:path';
import { fail } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { base32Decode, base32Encode } from './onion-key.js';

export const CLIENTS_FILE = path.join('identity', 'clients.json');

export interface AuthorizedClient {
  name: string;
  /** base32 (52 chars, upper case) of the client's x25519 public key. */
  publicKey: string;
  /** ms since the epoch. */
  addedAt: number;
}

export interface ClientsFile {
  version: 1;
  clients: AuthorizedClient[];
}

export interface ClientKeyPair {
  /** base32 x25519 public key: what the node publishes with (ClientAuthV3). */
  publicKey: string;
  /** base32 x25519 private key: what the client's tor (or Tor Browser) needs. Never stored by the node. */
  privateKey: string;
}

const KEY_B32 = /^[A-Z2-7]{52}$/;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** Each key adds an auth-client line to the descriptor (tor caps a descriptor at 50 kB): a sane cap well below that. */
export const MAX_CLIENTS = 256;

export function clientsFile(dataDir: string): string {
  return path.join(dataDir, CLIENTS_FILE);
}

export function isClientName(name: string): boolean {
  return NAME.test(name);
}

export function isClientKey(key: string): boolean {
  return KEY_B32.test(key) && base32Decode(key.toLowerCase()).length === 32;
}

/** A fresh x25519 key pair (node:crypto), both halves as upper-case base32. */
export function newClientKeyPair(): ClientKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  const d = Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url');
  const x = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
  return { publicKey: base32Encode(x).toUpperCase(), privateKey: base32Encode(d).toUpperCase() };
}

/** The line of a ClientOnionAuthDir file (`<anything>.auth_private`) for this node. */
export function clientAuthLine(onion: string, privateKey: string): string {
  const serviceId = onion.replace(/\.onion$/, '');
  if (!/^[a-z2-7]{56}$/.test(serviceId)) fail('malformed', `not a v3 onion address: ${onion}`);
  if (!isClientKey(privateKey)) fail('bad_key', 'a client private key is 52 base32 characters');
  return `${serviceId}:descriptor:x25519:${privateKey}`;
}

/** The authorized clients; an empty list when the file does not exist (a public node). */
export async function readClients(dataDir: string): Promise<AuthorizedClient[]> {
  const file = clientsFile(dataDir);
  let fh;
  try {
    fh = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return [];
    if (code === 'ELOOP') fail('identity_invalid', `${file} is a symlink; it must be a regular file`);
    fail('identity_invalid', `cannot read ${file}: ${(e as Error).message}`);
  }
  let text: string;
  try {
    const st = await fh.stat();
    if (!st.isFile()) fail('identity_invalid', `${file} is not a regular file`);
    // Public keys only, but who may reach the node is the operator's to decide: nobody else may write it.
    if ((st.mode & 0o077) !== 0) fail('identity_permissions', `${file} has mode ${(st.mode & 0o777).toString(8)}; it must be 0600 (chmod 600 it)`);
    text = await fh.readFile('utf8');
  } finally {
    await fh.close();
  }
  return parseClients(text, file).clients;
}

export function parseClients(text: string, file = CLIENTS_FILE): ClientsFile {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    fail('identity_invalid', `${file} is not JSON`);
  }
  const d = doc as Partial<ClientsFile> | null;
  if (!d || d.version !== 1 || !Array.isArray(d.clients)) fail('identity_invalid', `${file}: expected {"version":1,"clients":[…]}`);
  const seen = new Set<string>();
  for (const c of d.clients) {
    if (!c || typeof c.name !== 'string' || !isClientName(c.name)) fail('identity_invalid', `${file}: a client has a bad name`);
    if (typeof c.publicKey !== 'string' || !isClientKey(c.publicKey)) fail('identity_invalid', `${file}: client ${c.name} has a bad public key`);
    if (typeof c.addedAt !== 'number') fail('identity_invalid', `${file}: client ${c.name} has no addedAt`);
    if (seen.has(c.name)) fail('identity_invalid', `${file}: client ${c.name} is listed twice`);
    seen.add(c.name);
  }
  if (d.clients.length > MAX_CLIENTS) fail('identity_invalid', `${file}: more than ${MAX_CLIENTS} clients`);
  return { version: 1, clients: d.clients };
}

export async function writeClients(dataDir: string, clients: AuthorizedClient[]): Promise<void> {
  const file = clientsFile(dataDir);
  await privateDir(path.dirname(file));
  const doc: ClientsFile = { version: 1, clients };
  await writeFileAtomic(file, JSON.stringify(doc, null, 2) + '\n', 0o600);
}

/** Adds a client under a new name; returns its key pair (the private half only for the operator to pass on). */
export async function addClient(dataDir: string, name: string, now = Date.now()): Promise<ClientKeyPair> {
  if (!isClientName(name)) fail('malformed', `a client name is 1-64 letters, digits, '.', '_' or '-' (starting with a letter or digit): ${JSON.stringify(name)}`);
  const clients = await readClients(dataDir);
  if (clients.some((c) => c.name === name)) fail('key_exists', `a client named ${name} is already authorized (remove it first to replace its key)`);
  if (clients.length >= MAX_CLIENTS) fail('config_invalid', `at most ${MAX_CLIENTS} clients`);
  const pair = newClientKeyPair();
  await writeClients(dataDir, [...clients, { name, publicKey: pair.publicKey, addedAt: now }]);
  return pair;
}

/**
 * Removes a client. Removing the last one would make the node public again (ADD_ONION without
 * ClientAuthV3), which must never happen by accident: it needs `makePublic`.
 */
export async function removeClient(dataDir: string, name: string, opts: { makePublic?: boolean } = {}): Promise<{ remaining: number }> {
  const clients = await readClients(dataDir);
  const rest = clients.filter((c) => c.name !== name);
  if (rest.length === clients.length) fail('key_not_found', `no authorized client named ${JSON.stringify(name)}`);
  if (rest.length === 0 && !opts.makePublic) {
    fail(
      'config_invalid',
      `${name} is the last authorized client: without it the node would be public (reachable by anyone with its address). ` +
        'Add another client first, or pass --make-public to remove it and make the node public',
    );
  }
  await writeClients(dataDir, rest);
  return { remaining: rest.length };
}

async function privateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const st = await lstat(dir);
  if (!st.isDirectory()) fail('identity_invalid', `${dir} is not a directory`);
  if ((st.mode & 0o077) !== 0) await chmod(dir, 0o700);
}
