/**
 * Node configuration: defaults < config file < environment < command-line flags.
 * Validation is strict: a node that would listen beyond loopback refuses to start.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import { fail } from '../errors.js';
import { DEFAULT_POW_BITS } from '../pow/cluster.js';

export type Durability = 'full' | 'normal';

export interface NodeConfig {
  dataDir: string;
  host: string;
  port: number;
  /** '*' mirrors every table; else the fingerprints (hex) of the mirrored tables. */
  allowedTables: '*' | string[];
  powBits: number;
  maxPayloadBytes: number;
  maxBodyBytes: number;
  maxBatchEntries: number;
  maxFutureSkewMs: number;
  durability: Durability;
  tor: 'off' | 'auto';
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
};

export type ConfigInput = { [K in keyof NodeConfig]?: unknown };

/** Environment variables, named after the seed's config.py where it had one (ALLOWED_TABLES). */
const ENV_NAMES: Record<keyof NodeConfig, string> = {
  dataDir: 'P2PDB_DATA',
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

function tables(value: unknown): '*' | string[] {
  const list = typeof value === 'string' ? value.split(',') : value;
  if (!Array.isArray(list)) fail('config_invalid', 'allowedTables must be "*" or a list of table fingerprints');
  const items = list.map((t) => String(t).trim().toLowerCase()).filter((t) => t !== '');
  if (items.length === 1 && items[0] === '*') return '*';
  for (const t of items) {
    if (!/^[0-9a-f]{64}$/.test(t)) fail('config_invalid', `allowed table ${JSON.stringify(t)} is not a 64-hex-digit fingerprint`);
  }
  return [...new Set(items)];
}

function oneOf<T extends string>(value: unknown, name: string, options: readonly T[]): T {
  if (typeof value !== 'string' || !options.includes(value as T)) {
    fail('config_invalid', `${name} must be one of ${options.join(', ')}`);
  }
  return value as T;
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
  return {
    dataDir: path.resolve(String(merged.dataDir)),
    host: host === 'localhost' ? '127.0.0.1' : host,
    port: int(merged.port, 'port', 0, 65535),
    allowedTables: tables(merged.allowedTables),
    powBits: int(merged.powBits, 'powBits', 4, 64),
    maxPayloadBytes: int(merged.maxPayloadBytes, 'maxPayloadBytes', 64, 16 * 1024 * 1024),
    maxBodyBytes: int(merged.maxBodyBytes, 'maxBodyBytes', 1024, 1024 * 1024 * 1024),
    maxBatchEntries: int(merged.maxBatchEntries, 'maxBatchEntries', 1, 100_000),
    maxFutureSkewMs: int(merged.maxFutureSkewMs, 'maxFutureSkewMs', 0, 7 * 24 * 3600 * 1000),
    durability: oneOf(merged.durability, 'durability', ['full', 'normal'] as const),
    tor: oneOf(merged.tor, 'tor', ['off', 'auto'] as const),
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
