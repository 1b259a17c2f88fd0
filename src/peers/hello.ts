/**
 * The signed hello: a node's self-description, addressed to one other node and signed with
 * the Ed25519 key its onion address encodes. Pure: building, encoding and checking only.
 *
 * The signature covers a line format (helloSigningText) rather than JSON, so any language can
 * rebuild the exact bytes without a canonical-JSON library. Every field is restricted to
 * characters that cannot contain a line break, so the text is unambiguous.
 */
import { fail } from '../errors.js';
import type { TableSet } from '../entry/table-policy.js';
import { publicKeyOfOnion, signAsOnion, verifyOnionSignature, type OnionIdentity } from '../identity/onion-key.js';

/** Re-exported for the modules that take it from here (peer-store.ts). */
export type { TableSet } from '../entry/table-policy.js';

export const HELLO_PROTOCOL = 'p2pdb/1';
/** First line of the signed text: separates hello signatures from anything else the key signs. */
export const HELLO_TEXT_TAG = 'p2pdb-hello/1';
/** A hello is accepted within ±10 minutes of the callee's clock (the replay window). */
export const HELLO_WINDOW_MS = 10 * 60 * 1000;
/** Bounds that keep a hello small (well under MAX_HELLO_BODY_BYTES). */
export const MAX_HELLO_TABLES = 1000;
export const MAX_SOFTWARE_CHARS = 64;
export const MAX_POW_BITS = 64;
/** JSON body of POST /hello/: 1,000 fingerprints are ~67 KB. */
export const MAX_HELLO_BODY_BYTES = 96 * 1024;


export interface HelloMessage {
  protocol: string;
  /** The sender's v3 onion address: its identity. */
  onion: string;
  /** The recipient's v3 onion address: a hello is good for that node only. */
  to: string;
  /** '*' or the mirrored table fingerprints, lower-case hex, sorted, no duplicates. */
  tables: TableSet;
  pow_bits: number;
  /** Sender's clock, ms since the epoch. */
  timestamp: number;
  software: string;
}

export interface SignedHello {
  hello: HelloMessage;
  /** Standard padded base64 of the 64-byte Ed25519 signature of helloSigningText(hello). */
  signature: string;
}

/** What a node says about itself in every hello. */
export interface HelloSelf {
  tables: TableSet;
  pow_bits: number;
  software: string;
}

const ONION = /^[a-z2-7]{56}\.onion$/;
const FINGERPRINT = /^[0-9a-f]{64}$/;
const PROTOCOL = /^p2pdb\/[1-9][0-9]{0,3}$/;
const SOFTWARE = /^[\x20-\x7e]+$/;
const SIGNATURE_B64 = /^[A-Za-z0-9+/]{86}==$/;

/** True for a v3 onion address with a valid checksum and version. */
export function isOnionAddress(value: unknown): value is string {
  if (typeof value !== 'string' || !ONION.test(value)) return false;
  try {
    publicKeyOfOnion(value);
    return true;
  } catch {
    return false;
  }
}

/** Accepts "x.onion", "http://x.onion/" (as operators paste them); returns the address or undefined. */
export function normalizeOnion(value: string): string | undefined {
  let text = value.trim().toLowerCase();
  const url = /^https?:\/\/([^/]+)\/?$/.exec(text);
  if (url) text = url[1]!;
  if (!text.endsWith('.onion')) text += '.onion';
  return isOnionAddress(text) ? text : undefined;
}

/** Table sets in their one canonical form ('*' or sorted, unique, lower-case); throws malformed. */
export function checkTables(value: unknown, field = 'tables'): TableSet {
  if (value === '*') return '*';
  if (!Array.isArray(value)) fail('malformed', `${field} must be "*" or a list of table fingerprints`);
  if (value.length > MAX_HELLO_TABLES) fail('malformed', `${field} lists more than ${MAX_HELLO_TABLES} tables`);
  for (let i = 0; i < value.length; i++) {
    const t: unknown = value[i];
    if (typeof t !== 'string' || !FINGERPRINT.test(t)) fail('malformed', `${field}[${i}] is not 64 lower-case hex characters`);
    if (i > 0 && !(value[i - 1] < t)) fail('malformed', `${field} must be sorted and without duplicates`);
  }
  return value as string[];
}

/** A node's own table list in canonical order (config lists may be in any order). */
export function canonicalTables(tables: TableSet): TableSet {
  return tables === '*' ? '*' : [...new Set(tables.map((t) => t.toLowerCase()))].sort();
}

function checkOnionField(value: unknown, field: string): string {
  if (!isOnionAddress(value)) fail('malformed', `${field} must be a v3 onion address (56 base32 characters + ".onion", valid checksum)`);
  return value;
}

/** Well-formedness of a hello object; returns it typed, with unknown fields dropped. */
export function parseHelloMessage(value: unknown): HelloMessage {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('malformed', 'hello must be an object');
  const v = value as Record<string, unknown>;
  if (typeof v.protocol !== 'string' || !PROTOCOL.test(v.protocol)) fail('malformed', 'protocol must look like "p2pdb/1"');
  if (v.protocol !== HELLO_PROTOCOL) fail('malformed', `protocol ${v.protocol} is not supported; this node speaks ${HELLO_PROTOCOL}`);
  const onion = checkOnionField(v.onion, 'onion');
  const to = checkOnionField(v.to, 'to');
  const tables = checkTables(v.tables);
  if (!Number.isInteger(v.pow_bits) || (v.pow_bits as number) < 0 || (v.pow_bits as number) > MAX_POW_BITS) {
    fail('malformed', `pow_bits must be an integer from 0 to ${MAX_POW_BITS}`);
  }
  if (!Number.isSafeInteger(v.timestamp) || (v.timestamp as number) < 0) fail('malformed', 'timestamp must be a non-negative integer (ms)');
  if (typeof v.software !== 'string' || v.software.length > MAX_SOFTWARE_CHARS || !SOFTWARE.test(v.software)) {
    fail('malformed', `software must be 1-${MAX_SOFTWARE_CHARS} printable ASCII characters`);
  }
  return {
    protocol: v.protocol,
    onion,
    to,
    tables,
    pow_bits: v.pow_bits as number,
    timestamp: v.timestamp as number,
    software: v.software,
  };
}

/** The exact bytes a hello signature covers (UTF-8 of this text; every line ends with "\n"). */
export function helloSigningText(h: HelloMessage): string {
  return [
    HELLO_TEXT_TAG,
    `onion=${h.onion}`,
    `to=${h.to}`,
    `protocol=${h.protocol}`,
    `tables=${h.tables === '*' ? '*' : h.tables.join(',')}`,
    `pow_bits=${h.pow_bits}`,
    `timestamp=${h.timestamp}`,
    `software=${h.software}`,
    '',
  ].join('\n');
}

/** A hello from `identity` to `to`, signed. Throws malformed if `self` cannot make a valid hello. */
export function makeSignedHello(identity: OnionIdentity, to: string, self: HelloSelf, now: number): SignedHello {
  const hello = parseHelloMessage({
    protocol: HELLO_PROTOCOL,
    onion: identity.address,
    to,
    tables: canonicalTables(self.tables),
    pow_bits: self.pow_bits,
    timestamp: now,
    software: self.software,
  });
  const signature = signAsOnion(identity, Buffer.from(helloSigningText(hello), 'utf8')).toString('base64');
  return { hello, signature };
}

export interface HelloCheckContext {
  /** The receiving node's own onion address. */
  self: string;
  /** The receiving node's clock (ms). */
  now: number;
  windowMs?: number;
}

/**
 * Every check a receiver makes, cheapest first, each with its own code:
 * malformed → hello_self (claims to be us) → hello_misaddressed (`to` is someone else) →
 * hello_stale (outside the replay window) → bad_signature (not signed by the key `onion` encodes).
 */
export function checkSignedHello(body: unknown, ctx: HelloCheckContext): HelloMessage {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) fail('malformed', 'the body must be {"hello": {...}, "signature": "..."}');
  const b = body as Record<string, unknown>;
  const hello = parseHelloMessage(b.hello);
  if (typeof b.signature !== 'string' || !SIGNATURE_B64.test(b.signature)) {
    fail('malformed', 'signature must be the standard padded base64 of 64 bytes');
  }
  const signature = Buffer.from(b.signature, 'base64');
  if (signature.toString('base64') !== b.signature) fail('malformed', 'signature must be canonical base64');
  if (hello.onion === ctx.self) fail('hello_self', 'a hello may not claim the address of the node it is sent to');
  if (hello.to !== ctx.self) fail('hello_misaddressed', `this hello is addressed to ${hello.to}, not to this node`);
  const windowMs = ctx.windowMs ?? HELLO_WINDOW_MS;
  if (Math.abs(hello.timestamp - ctx.now) > windowMs) {
    fail('hello_stale', `the hello's timestamp is ${Math.round((hello.timestamp - ctx.now) / 1000)} s from this node's clock (allowed ±${windowMs / 1000} s)`);
  }
  if (!verifyOnionSignature(hello.onion, Buffer.from(helloSigningText(hello), 'utf8'), signature)) {
    fail('bad_signature', `the signature was not made by the key of ${hello.onion}`);
  }
  return hello;
}
