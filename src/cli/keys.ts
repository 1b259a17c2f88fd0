/** `p2pdb keys …`: the client's keyring. */
import { readFile } from 'node:fs/promises';
import { fail } from '../errors.js';
import {
  COMMON_CLIENT_HELP,
  NODE_OPTION,
  UsageError,
  expectPositionals,
  flag,
  openKeyring,
  parse,
  positiveInt,
  println,
  readAll,
  str,
  type CliIo,
  type Command,
} from './context.js';

const USAGE = `usage:
  p2pdb keys new NAME [--bits 2048]     generate an RSA key pair (table or identity)
  p2pdb keys list                       list keys (no passphrase needed)
  p2pdb keys export NAME [--private]    print the public key PEM, or the private key PEM
  p2pdb keys import NAME [FILE|-]       add a PEM key (public or private) from a file or stdin
  p2pdb keys remove NAME                delete a key from the keyring

NAME in export and remove may also be a fingerprint or a unique fingerprint prefix.

options:
  --bits N     key size for new keys, 2048 to 4096 (default 2048)
  --private    export the private key (it is printed unencrypted: handle with care)
${COMMON_CLIENT_HELP}`;

async function keysNew(args: string[], io: CliIo): Promise<number> {
  const p = parse('keys', args, { ...NODE_OPTION, bits: { type: 'string' } });
  if (flag(p, 'help')) return help(io);
  const [name] = expectPositionals('keys', p, 1, 1, 'a key NAME: p2pdb keys new NAME');
  const bits = positiveInt('keys', str(p, 'bits'), '--bits', 4096, 2048) ?? 2048;
  const keyring = await openKeyring(io);
  const key = await keyring.generate(name!, bits);
  println(io.stdout, `created key ${key.name} (RSA ${key.bits}) ${key.fingerprint}`);
  return 0;
}

async function keysList(args: string[], io: CliIo): Promise<number> {
  const p = parse('keys', args, NODE_OPTION);
  if (flag(p, 'help')) return help(io);
  expectPositionals('keys', p, 0, 0, 'no arguments: p2pdb keys list');
  const keyring = await openKeyring(io);
  const keys = keyring.list();
  if (keys.length === 0) {
    println(io.stderr, `no keys in ${keyring.file}; make one with: p2pdb keys new NAME`);
    return 0;
  }
  const width = Math.max(...keys.map((k) => k.name.length));
  for (const k of keys) {
    println(io.stdout, `${k.name.padEnd(width)}  ${k.fingerprint}  ${k.hasPrivate ? 'private' : 'public '}  RSA ${k.bits}`);
  }
  return 0;
}

async function keysExport(args: string[], io: CliIo): Promise<number> {
  const p = parse('keys', args, { ...NODE_OPTION, private: { type: 'boolean' } });
  if (flag(p, 'help')) return help(io);
  const [ref] = expectPositionals('keys', p, 1, 1, 'a key NAME: p2pdb keys export NAME [--private]');
  const keyring = await openKeyring(io);
  io.stdout.write(flag(p, 'private') ? await keyring.exportPrivatePem(ref!) : keyring.exportPublicPem(ref!));
  return 0;
}

async function keysImport(args: string[], io: CliIo): Promise<number> {
  const p = parse('keys', args, NODE_OPTION);
  if (flag(p, 'help')) return help(io);
  const [name, file = '-'] = expectPositionals('keys', p, 1, 2, 'NAME and optionally FILE: p2pdb keys import NAME [FILE|-]');
  let pem: string;
  if (file === '-') {
    if (io.stdin.isTTY) println(io.stderr, 'paste the PEM key, then press Ctrl-D');
    pem = (await readAll(io.stdin)).toString('utf8');
  } else {
    try {
      pem = await readFile(file, 'utf8');
    } catch (e) {
      fail('bad_request', `cannot read ${file}: ${(e as Error).message}`);
    }
  }
  const keyring = await openKeyring(io);
  const key = await keyring.importPem(name!, pem);
  println(io.stdout, `imported ${key.hasPrivate ? 'private' : 'public'} key ${key.name} (RSA ${key.bits}) ${key.fingerprint}`);
  return 0;
}

async function keysRemove(args: string[], io: CliIo): Promise<number> {
  const p = parse('keys', args, NODE_OPTION);
  if (flag(p, 'help')) return help(io);
  const [ref] = expectPositionals('keys', p, 1, 1, 'a key NAME: p2pdb keys remove NAME');
  const keyring = await openKeyring(io);
  const key = await keyring.remove(ref!);
  println(io.stdout, `removed ${key.hasPrivate ? 'private' : 'public'} key ${key.name} ${key.fingerprint}`);
  return 0;
}

function help(io: CliIo): number {
  println(io.stdout, USAGE);
  return 0;
}

const SUBCOMMANDS: Record<string, (args: string[], io: CliIo) => Promise<number>> = {
  new: keysNew,
  list: keysList,
  ls: keysList,
  export: keysExport,
  import: keysImport,
  remove: keysRemove,
  rm: keysRemove,
};

export const keysCommand: Command = {
  name: 'keys',
  summary: 'manage the keyring: new, list, export, import, remove',
  usage: USAGE,
  async run(args, io) {
    const [sub, ...rest] = args;
    if (sub === '--help' || sub === '-h' || sub === 'help') return help(io);
    if (sub === undefined) throw new UsageError('missing subcommand: new, list, export, import or remove', 'keys');
    const fn = SUBCOMMANDS[sub];
    if (!fn) throw new UsageError(`unknown keys subcommand ${JSON.stringify(sub)}`, 'keys');
    return fn(rest, io);
  },
};
