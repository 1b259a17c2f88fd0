/**
 * Node configuration: defaults < config file < environment < command-line flags.
 * Validation is strict: a node that would listen beyond loopback refuses to start.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import { fail } from '../errors.js';
import { DEFAULT_POW_BITS } from '../pow/cluster.js';
import type { TableSet } from '../entry/table-policy.js';
import { parseDatabase } from '../store/database-locator.js';

export type Durability = 'full' | 'normal';

/** off: loopback only; managed: the node runs its own tor; attach: it uses a tor someone else runs. */
export type TorMode = 'off' | 'managed' | 'attach';

/** Where a control port is: TCP on 127.0.0.1, or a unix socket. */
export type TorControlEndpoint = { port: number } | { socketPath: string };

export interface NodeConfig {
  dataDir: string;
  /** postgres://… or a SQLite file; unset: SQLite in dataDir (p2pdb.sqlite). */
  database?: string;
  host: string;
  port: number;
  /** '*' mirrors every table; else the fingerprints (hex) of the mirrored tables. */
  allowedTables: TableSet;
  powBits: number;
  maxPayloadBytes: number;
  maxBodyBytes: number;
  maxBatchEntries: number;
  maxFutureSkewMs: number;
  durability: Durability;
  tor: TorMode;
  /** attach: "127.0.0.1:PORT" or "unix:/path". */
  torControl?: string;
  /** attach: HASHEDPASSWORD auth; without it, cookie auth. */
  torControlPassword?: string;
  /** "127.0.0.1:PORT": managed uses it as its SocksPort (else a free port); attach asks tor when unset. */
  torSocks?: string;
  torBinary: string;
  /** Appended to the managed torrc: bridges, or a private network's DirAuthority/Testing* lines. */
  torExtraLines: string[];
  /** The onion-service proof-of-work defence (PoWDefensesEnabled), where tor supports it. */
  onionPow: boolean;
  /** PoWQueueRate: introductions per second taken from the PoW priority queue. */
  onionPowQueueRate: number;
  /** PoWQueueBurst: how many may be taken at once (at least the rate). */
  onionPowQueueBurst: number;
  /** MaxStreams per rendezvous circuit, with MaxStreamsCloseCircuit; 0: no limit. */
  onionMaxStreams: number;
  /** Bootstrap peers: v3 onion addresses said hello to at start (and learned from). */
  peers: string[];
  /** How often the peering loop looks for peers due a hello (jittered). */
  peeringIntervalMs: number;
  /** How often each verified peer sharing tables is synced with (jittered); 0: no periodic sync (pushes and `p2pdb sync` still run). */
  syncIntervalMs: number;
}

export const DEFAULT_CONFIG: NodeConfig = {
  dataDir: './data',
  host: '127.0.0.1',
  port: 8733,
  allowedTables: '*',
  powBits: DEFAULT_POW_BITS,
  maxPayloadBytes: 64 * 1024,
  maxBodyBytes: 16 * 1024 * 1024,
  maxBatchEntries: 2000,
  maxFutureSkewMs: 5 * 60 * 1000,
  durability: 'full',
  tor: 'off',
  torBinary: 'tor',
  torExtraLines: [],
  onionPow: true,
  onionPowQueueRate: 250,
  onionPowQueueBurst: 2500,
  onionMaxStreams: 64,
  peers: [],
  peeringIntervalMs: 30_000,
  syncIntervalMs: 60_000,
};

export type ConfigInput = { [K in keyof NodeConfig]?: unknown };

/** Environment variables, named after the seed's config.py where it had one (ALLOWED_TABLES). */
const ENV_NAMES: Partial<Record<keyof NodeConfig, string>> = {
  dataDir: 'P2PDB_DATA',
  database: 'P2PDB_DATABASE',
  host: 'P2PDB_HOST',
  port: 'P2PDB_PORT',
  allowedTables: 'P2PDB_ALLOWED_TABLES',
  powBits: 'P2PDB_POW_BITS',
  maxPayloadBytes: 'P2PDB_MAX_PAYLOAD_BYTES',
  maxBodyBytes: 'P2PDB_MAX_BODY_BYTES',
  maxBatchEntries: 'P2PDB_MAX_BATCH_ENTRIES',
  maxFutureSkewMs: 'P2PDB_MAX_FUTURE_SKEW_MS',
  durability: 'P2PDB_DURABILITY',
  tor: 'P2PDB_TOR',
  peers: 'P2PDB_PEERS',
  torControl: 'P2PDB_TOR_CONTROL',
  torControlPassword: 'P2PDB_TOR_CONTROL_PASSWORD',
  torSocks: 'P2PDB_TOR_SOCKS',
  torBinary: 'P2PDB_TOR_BINARY',
  syncIntervalMs: 'P2PDB_SYNC_INTERVAL_MS',
  onionPow: 'P2PDB_ONION_POW',
  onionPowQueueRate: 'P2PDB_ONION_POW_QUEUE_RATE',
  onionPowQueueBurst: 'P2PDB_ONION_POW_QUEUE_BURST',
  onionMaxStreams: 'P2PDB_ONION_MAX_STREAMS',
};

export function configFromEnv(env: NodeJS.ProcessEnv): ConfigInput {
  const out: ConfigInput = {};
  for (const [key, name] of Object.entries(ENV_NAMES) as [keyof NodeConfig, string][]) {
    const value = env[name];
    if (value !== undefined && value !== '') out[key] = value;
  }
  return out;
}

export function readConfigFile(file: string): ConfigInput {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    fail('config_invalid', `cannot read config file ${file}: ${(e as Error).message}`);
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
    return parsed as ConfigInput;
  } catch (e) {
    fail('config_invalid', `config file ${file} is not a JSON object: ${(e as Error).message}`);
  }
}

const LOOPBACK_NAMES = new Set(['localhost']);

/** True only for literal loopback addresses: 127.0.0.0/8 and ::1. */
export function isLoopback(host: string): boolean {
  if (LOOPBACK_NAMES.has(host)) return true;
  const kind = isIP(host);
  if (kind === 4) return host.startsWith('127.');
  if (kind === 6) return host === '::1' || host === '0:0:0:0:0:0:0:1';
  return false;
}

function int(value: unknown, name: string, min: number, max: number): number {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    fail('config_invalid', `${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return n;
}

function tables(value: unknown): TableSet {
  const list = typeof value === 'string' ? value.split(',') : value;
  if (!Array.isArray(list)) fail('config_invalid', 'allowedTables must be "*" or a list of table fingerprints');
  const items = list.map((t) => String(t).trim().toLowerCase()).filter((t) => t !== '');
  if (items.length === 1 && items[0] === '*') return '*';
  for (const t of items) {
    if (!/^[0-9a-f]{64}$/.test(t)) fail('config_invalid', `allowed table ${JSON.stringify(t)} is not a 64-hex-digit fingerprint`);
  }
  return [...new Set(items)];
}

function onOff(value: unknown, name: string): boolean {
  if (typeof value === 'boolean') return value;
  const text = typeof value === 'string' ? value.trim().toLowerCase() : value;
  if (text === 'on' || text === 'true' || text === '1') return true;
  if (text === 'off' || text === 'false' || text === '0') return false;
  fail('config_invalid', `${name} must be on or off, got ${JSON.stringify(value)}`);
}

function onionDefences(merged: ConfigInput): Pick<NodeConfig, 'onionPow' | 'onionPowQueueRate' | 'onionPowQueueBurst' | 'onionMaxStreams'> {
  const onionPowQueueRate = int(merged.onionPowQueueRate, 'onionPowQueueRate', 1, 1_000_000);
  const onionPowQueueBurst = int(merged.onionPowQueueBurst, 'onionPowQueueBurst', 1, 10_000_000);
  // tor takes any pair, but a bucket smaller than its rate caps the rate at the burst: say so now.
  if (onionPowQueueBurst < onionPowQueueRate) fail('config_invalid', `onionPowQueueBurst (${onionPowQueueBurst}) must be at least onionPowQueueRate (${onionPowQueueRate})`);
  return {
    onionPow: onOff(merged.onionPow, 'onionPow'),
    onionPowQueueRate,
    onionPowQueueBurst,
    onionMaxStreams: int(merged.onionMaxStreams, 'onionMaxStreams', 0, 65535),
  };
}

function oneOf<T extends string>(value: unknown, name: string, options: readonly T[]): T {
  if (typeof value !== 'string' || !options.includes(value as T)) {
    fail('config_invalid', `${name} must be one of ${options.join(', ')}`);
  }
  return value as T;
}

const TOR_MODES = ['off', 'managed', 'attach', 'auto'] as const;
const LOOPBACK_PORT = /^127\.0\.0\.1:(\d{1,5})$/;

/** Parses "127.0.0.1:PORT" or "unix:/absolute/path"; nothing else is ever dialed. */
export function parseTorControl(value: string): TorControlEndpoint {
  if (value.startsWith('unix:')) {
    const socketPath = value.slice('unix:'.length);
    if (!path.isAbsolute(socketPath) || /[\0\r\n]/.test(socketPath)) fail('config_invalid', `torControl unix socket must be an absolute path, got ${JSON.stringify(value)}`);
    return { socketPath };
  }
  return { port: loopbackPort(value, 'torControl') };
}

/** The port of "127.0.0.1:PORT"; anything else (another host, a name) is refused. */
export function loopbackPort(value: string, name: string): number {
  const m = LOOPBACK_PORT.exec(value);
  const port = m ? Number(m[1]) : NaN;
  if (!(port >= 1 && port <= 65535)) {
    fail('config_invalid', `${name} must be 127.0.0.1:PORT (Tor is reached on loopback only), got ${JSON.stringify(value)}`);
  }
  return port;
}

function optionalString(value: unknown, name: string): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') fail('config_invalid', `${name} must be a string`);
  return value;
}

function torrcLines(value: unknown): string[] {
  const list = typeof value === 'string' ? value.split('\n') : value;
  if (!Array.isArray(list) || list.some((l) => typeof l !== 'string')) fail('config_invalid', 'torExtraLines must be a list of torrc lines');
  // One item is one line: an item with a line break could smuggle in lines a reviewer never sees.
  if (list.some((l: string) => /[\r\n\0]/.test(l))) fail('config_invalid', 'a torExtraLines item may not contain a line break');
  return (list as string[]).map((l) => l.trim()).filter((l) => l !== '');
}

function torSettings(merged: ConfigInput, host: string): Pick<NodeConfig, 'tor' | 'torControl' | 'torControlPassword' | 'torSocks' | 'torBinary' | 'torExtraLines'> {
  const mode = oneOf(merged.tor, 'tor', TOR_MODES);
  const tor: TorMode = mode === 'auto' ? 'managed' : mode; // 'auto' was the name before modes existed
  const torControl = optionalString(merged.torControl, 'torControl');
  const torControlPassword = optionalString(merged.torControlPassword, 'torControlPassword');
  const torSocks = optionalString(merged.torSocks, 'torSocks');
  const torBinary = optionalString(merged.torBinary, 'torBinary') ?? DEFAULT_CONFIG.torBinary;
  if (/[\0\r\n]/.test(torBinary)) fail('config_invalid', 'torBinary may not contain a line break');
  if (torControl !== undefined) parseTorControl(torControl);
  if (torSocks !== undefined) loopbackPort(torSocks, 'torSocks');
  if (tor === 'attach' && torControl === undefined) fail('config_invalid', 'tor "attach" needs torControl (127.0.0.1:PORT or unix:/path)');
  // ADD_ONION targets 127.0.0.1:PORT; a node on another loopback address would be unreachable.
  if (tor !== 'off' && host !== '127.0.0.1') fail('config_invalid', `with Tor on the node must listen on 127.0.0.1 (the onion's target), not ${host}`);
  return {
    tor,
    ...(torControl !== undefined ? { torControl } : {}),
    ...(torControlPassword !== undefined ? { torControlPassword } : {}),
    ...(torSocks !== undefined ? { torSocks } : {}),
    torBinary,
    torExtraLines: torrcLines(merged.torExtraLines ?? []),
  };
}

/** Peers are v3 onion addresses (a URL like http://x.onion/ is accepted and reduced to its host). */
function onionList(value: unknown): string[] {
  const list = typeof value === 'string' ? value.split(',') : value;
  if (!Array.isArray(list)) fail('config_invalid', 'peers must be a list of onion addresses');
  const out = (list as unknown[]).map((item) => {
    const text = String(item).trim().toLowerCase().replace(/^http:\/\//, '').replace(/\/$/, '');
    if (!/^[a-z2-7]{56}\.onion$/.test(text)) fail('config_invalid', `peer ${JSON.stringify(item)} is not a v3 onion address`);
    return text;
  });
  return [...new Set(out.filter((p) => p !== ''))];
}

/** Merges layers (later wins) and validates the result. */
export function resolveConfig(...layers: ConfigInput[]): NodeConfig {
  const merged: ConfigInput = { ...DEFAULT_CONFIG };
  for (const layer of layers) {
    for (const [k, v] of Object.entries(layer)) if (v !== undefined) (merged as Record<string, unknown>)[k] = v;
  }
  const host = String(merged.host);
  if (!isLoopback(host)) {
    fail('config_invalid', `refusing to listen on ${host}: p2pdb listens on loopback only (127.0.0.1 or ::1); peers reach it through its onion service`);
  }
  const listenHost = host === 'localhost' ? '127.0.0.1' : host;
  const dataDir = path.resolve(String(merged.dataDir));
  const database = optionalString(merged.database, 'database');
  if (database !== undefined) parseDatabase(database, dataDir);
  return {
    dataDir,
    ...(database !== undefined ? { database } : {}),
    host: listenHost,
    port: int(merged.port, 'port', 0, 65535),
    allowedTables: tables(merged.allowedTables),
    powBits: int(merged.powBits, 'powBits', 4, 64),
    maxPayloadBytes: int(merged.maxPayloadBytes, 'maxPayloadBytes', 64, 16 * 1024 * 1024),
    maxBodyBytes: int(merged.maxBodyBytes, 'maxBodyBytes', 1024, 1024 * 1024 * 1024),
    maxBatchEntries: int(merged.maxBatchEntries, 'maxBatchEntries', 1, 100_000),
    maxFutureSkewMs: int(merged.maxFutureSkewMs, 'maxFutureSkewMs', 0, 7 * 24 * 3600 * 1000),
    durability: oneOf(merged.durability, 'durability', ['full', 'normal'] as const),
    ...torSettings(merged, listenHost),
    ...onionDefences(merged),
    peers: onionList(merged.peers),
    peeringIntervalMs: int(merged.peeringIntervalMs, 'peeringIntervalMs', 1000, 24 * 3600 * 1000),
    syncIntervalMs: int(merged.syncIntervalMs, 'syncIntervalMs', 0, 24 * 3600 * 1000),
  };
}

export interface LoadConfigOptions {
  flags?: ConfigInput;
  env?: NodeJS.ProcessEnv;
  /** Explicit config file; else <dataDir>/config.json when it exists. */
  file?: string;
}

export function loadConfig(opts: LoadConfigOptions = {}): NodeConfig {
  const flags = opts.flags ?? {};
  const env = configFromEnv(opts.env ?? process.env);
  const dataDir = String(flags.dataDir ?? env.dataDir ?? DEFAULT_CONFIG.dataDir);
  const file = opts.file ?? path.join(dataDir, 'config.json');
  let fromFile: ConfigInput = {};
  if (opts.file !== undefined) fromFile = readConfigFile(file);
  else {
    try {
      fromFile = readConfigFile(file);
    } catch (e) {
      // A missing default file is normal; a present but broken one is an error.
      if ((e as { code?: string }).code !== 'config_invalid' || !/cannot read/.test((e as Error).message)) throw e;
    }
  }
  return resolveConfig(fromFile, env, flags);
}
