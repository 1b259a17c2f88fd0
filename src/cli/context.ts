/**
 * What every command gets: its streams, environment and outside world, passed in so the CLI
 * can run in-process or as a child, plus the shared argument and error conventions.
 */
import path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { Keyring, defaultHome } from '../client/keyring.js';
import { DEFAULT_NODE_URL, NodeApi, type FetchFunction } from '../client/node-api.js';
import { passphraseSource } from '../client/passphrase.js';
import { agentFetch, isOnionUrl } from '../client/transport.js';
import { DEFAULT_CONFIG, loopbackPort } from '../config/config.js';
import { fail } from '../errors.js';
import { peerAgent } from '../tor/socks.js';
import type { SocksProxyAgent } from 'socks-proxy-agent';

export type OutStream = NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
export type InStream = NodeJS.ReadableStream & { isTTY?: boolean };

export interface CliIo {
  stdout: OutStream;
  stderr: OutStream;
  stdin: InStream;
  env: NodeJS.ProcessEnv;
  homedir: string;
  fetch: FetchFunction;
  /** Resolves with the signal's name when the process is asked to stop (serve waits on it). */
  stopSignal: () => Promise<string>;
}

/** Bad invocation: exit code 2, with a pointer to --help. */
export class UsageError extends Error {
  constructor(message: string, readonly command: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface Command {
  name: string;
  summary: string;
  usage: string;
  run(args: string[], io: CliIo): Promise<number>;
}

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

export const NODE_OPTION: OptionSpec = { node: { type: 'string' }, socks: { type: 'string' } };
export const HELP_OPTION: OptionSpec = { help: { type: 'boolean', short: 'h' } };

export interface Parsed {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

/** Options of `p2pdb serve` that people try on client commands, with what to do instead. */
const SERVE_ONLY_HINTS: Record<string, (command: string) => string> = {
  'pow-bits': (command) =>
    command === 'put'
      ? "put mints the proof of work the node asks for (its pow_bits, see 'p2pdb status'); --pow-bits belongs to 'p2pdb serve', where it sets what a node requires"
      : "--pow-bits belongs to 'p2pdb serve', where it sets the proof of work a node requires",
  port: (command) => `--port belongs to 'p2pdb serve'; ${command} talks to a node with --node URL`,
  host: (command) => `--host belongs to 'p2pdb serve'; ${command} talks to a node with --node URL`,
  tor: () => "--tor belongs to 'p2pdb serve'; a client reaches an onion node with --node http://….onion --socks PORT",
};

/**
 * Node's own message for an unknown option is long, and its example of a '-' positional has
 * unbalanced quotes; this says which option is unknown and, for a serve option, where it goes.
 */
function unknownOptionMessage(command: string, nodeMessage: string): string {
  const option = /^Unknown option '([^']+)'/.exec(nodeMessage)?.[1];
  if (!option) return nodeMessage;
  const hint = SERVE_ONLY_HINTS[option.replace(/^--?/, '')];
  return hint
    ? `unknown option ${option}: ${hint(command)}`
    : `unknown option ${option} (an argument that starts with '-' goes after '--', e.g. p2pdb ${command} … -- '${option}')`;
}

/** parseArgs in strict mode, its errors turned into usage errors of `command`. */
export function parse(command: string, args: string[], options: OptionSpec): Parsed {
  try {
    const { values, positionals } = parseArgs({ args, options: { ...HELP_OPTION, ...options }, strict: true, allowPositionals: true });
    return { values: values as Parsed['values'], positionals };
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') throw new UsageError(unknownOptionMessage(command, (e as Error).message), command);
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) {
      throw new UsageError((e as Error).message, command);
    }
    throw e;
  }
}

export function str(p: Parsed, name: string): string | undefined {
  const v = p.values[name];
  return typeof v === 'string' ? v : undefined;
}

export function strs(p: Parsed, name: string): string[] {
  const v = p.values[name];
  if (Array.isArray(v)) return v.flatMap((s) => s.split(',')).map((s) => s.trim()).filter((s) => s !== '');
  return typeof v === 'string' ? [v] : [];
}

export function flag(p: Parsed, name: string): boolean {
  return p.values[name] === true;
}

export function positiveInt(command: string, value: string | undefined, name: string, max = Number.MAX_SAFE_INTEGER, min = 1): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new UsageError(`${name} must be a whole number from ${min} to ${max}`, command);
  }
  return Number(value);
}

export function expectPositionals(command: string, p: Parsed, min: number, max: number, what: string): string[] {
  if (p.positionals.length < min || p.positionals.length > max) throw new UsageError(`expected ${what}`, command);
  return p.positionals;
}

export function clientHome(io: CliIo): string {
  return defaultHome(io.env, io.homedir);
}

export function openKeyring(io: CliIo): Promise<Keyring> {
  return Keyring.open({ home: clientHome(io), passphrase: passphraseSource({ env: io.env, input: io.stdin, output: io.stderr }) });
}

/** The node's data directory: --data, else $P2PDB_DATA, else the default (./data), absolute. */
export function nodeDataDir(io: CliIo, dataOption: string | undefined): string {
  return path.resolve(dataOption ?? (io.env.P2PDB_DATA || DEFAULT_CONFIG.dataDir));
}

export function nodeUrl(io: CliIo, p: Parsed): string {
  return str(p, 'node') ?? (io.env.P2PDB_NODE || DEFAULT_NODE_URL);
}

/**
 * The SOCKS agent for the node URL: an onion is reached only through tor's SocksPort (--socks,
 * else $P2PDB_SOCKS), with tor resolving the name; without one the command stops before any
 * lookup, since a plain fetch would ask the local resolver for the .onion name. Other URLs
 * (the node on loopback) are dialled directly.
 */
export function nodeAgent(io: CliIo, p: Parsed): SocksProxyAgent | undefined {
  let url: URL;
  try {
    url = new URL(nodeUrl(io, p));
  } catch {
    return undefined; // NodeApi reports the bad URL
  }
  if (!isOnionUrl(url)) return undefined;
  const socks = str(p, 'socks') ?? (io.env.P2PDB_SOCKS || undefined);
  if (socks === undefined) {
    fail('config_invalid', `${url.host} is an onion address: give --socks 127.0.0.1:PORT (tor's SocksPort: 9050 for a system tor, 9150 for Tor Browser's) or set P2PDB_SOCKS`);
  }
  return peerAgent(loopbackPort(/^\d+$/.test(socks) ? `127.0.0.1:${socks}` : socks, '--socks'));
}

export function nodeApi(io: CliIo, p: Parsed, agent = nodeAgent(io, p)): NodeApi {
  // Slow circuits need room; a dead node should still not hang a command forever.
  return agent ? new NodeApi(nodeUrl(io, p), { fetch: agentFetch(agent), timeoutMs: 180_000 }) : new NodeApi(nodeUrl(io, p), { fetch: io.fetch });
}

export function println(out: OutStream, line = ''): void {
  out.write(line + '\n');
}

export async function readAll(input: InStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of input) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks);
}

/** The first 12 hex digits: enough to tell keys apart on screen. */
export function shortFingerprint(fp: string): string {
  return fp.slice(0, 12);
}

export const COMMON_CLIENT_HELP = `  --node URL   the node to talk to (default: $P2PDB_NODE or ${DEFAULT_NODE_URL}); an
               onion URL (http://….onion) is reached through tor only, see --socks
  --socks ADDR tor's SocksPort for onion URLs, 127.0.0.1:PORT or PORT (default:
               $P2PDB_SOCKS); the onion name is resolved by tor, never locally
  -h, --help   show this help

The keyring lives in $P2PDB_HOME (default ~/.p2pdb). The passphrase comes from
$P2PDB_PASSPHRASE or, in a terminal, a hidden prompt.`;
