/**
 * Pairing links (docs/PROTOCOL.md §12): a table key, optionally a recipient key and a label, in the
 * fragment of a link to a node's browser app. A fragment is never sent to a server, so the keys
 * go from the writer's device to the browser without touching the node.
 *
 *   http://<onion>.onion/#pair=1&t=<P>.<Q>[&r=<P>.<Q>][&l=<label>]
 *
 * Each key is its two primes (base64url, unpadded, big-endian, no leading zero bytes): with
 * e = 65537 that is the whole private key, in half the characters of PKCS#8, so a link with two
 * 2048-bit keys still fits one QR code. The reader rebuilds n, d, dp, dq, qi with BigInt.
 * Pure TypeScript, no Buffer: this module runs in Node (p2pdb pair) and in the browser app.
 */
import { fail, isP2pdbError } from '../errors.js';
import { bigIntToBytes, bytesToBigInt, fromBase64Url, toBase64Url } from './base64url.js';

export const PAIRING_VERSION = '1';
const E = 65537n;
const MIN_BITS = 2048;
const MAX_BITS = 4096;
/** Longest label accepted, in characters after decoding. */
export const MAX_LABEL_CHARS = 200;

/** A full RSA private key as a JWK (the subset of JsonWebKey that RSA uses). */
export interface RsaPrivateJwk {
  kty: 'RSA';
  n: string;
  e: string;
  d: string;
  p: string;
  q: string;
  dp: string;
  dq: string;
  qi: string;
}

type JwkLike = { kty?: string; n?: string; e?: string; d?: string; p?: string; q?: string; [k: string]: unknown };

export interface PairingKeys {
  table: JwkLike;
  recipient?: JwkLike;
  label?: string;
}

export interface DecodedPairing {
  table: RsaPrivateJwk;
  recipient?: RsaPrivateJwk;
  label?: string;
}

function modPow(base: bigint, exp: bigint, mod: bigint): bigint {
  let result = 1n;
  let b = base % mod;
  let e = exp;
  while (e > 0n) {
    if (e & 1n) result = (result * b) % mod;
    b = (b * b) % mod;
    e >>= 1n;
  }
  return result;
}

function gcd(a: bigint, b: bigint): bigint {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** a^-1 mod m (extended Euclid); fails when they share a factor. */
function modInverse(a: bigint, m: bigint): bigint {
  let [oldR, r] = [((a % m) + m) % m, m];
  let [oldS, s] = [1n, 0n];
  while (r !== 0n) {
    const q = oldR / r;
    [oldR, r] = [r, oldR - q * r];
    [oldS, s] = [s, oldS - q * s];
  }
  if (oldR !== 1n) fail('bad_request', 'pairing link: not an RSA key (no inverse)');
  return ((oldS % m) + m) % m;
}

const b64u = (n: bigint) => toBase64Url(bigIntToBytes(n));

/** Rebuilds the full private JWK from p and q (e = 65537), d modulo lcm(p-1, q-1) as OpenSSL 3 does. */
export function rsaJwkFromPrimes(p: bigint, q: bigint): RsaPrivateJwk {
  if (p <= 3n || q <= 3n || p === q || (p & 1n) === 0n || (q & 1n) === 0n) fail('bad_request', 'pairing link: the primes are not an RSA key');
  const n = p * q;
  const bits = n.toString(2).length;
  if (bits < MIN_BITS || bits > MAX_BITS) fail('bad_request', `pairing link: RSA keys must be ${MIN_BITS} to ${MAX_BITS} bits, this one has ${bits}`);
  const lambda = ((p - 1n) * (q - 1n)) / gcd(p - 1n, q - 1n);
  const d = modInverse(E, lambda);
  // A cheap check that catches a corrupted prime: a round trip through the key must come back.
  const probe = 0x1234_5678_9abc_def0n % n;
  if (modPow(modPow(probe, E, n), d, n) !== probe) fail('bad_request', 'pairing link: the primes are not an RSA key');
  return { kty: 'RSA', n: b64u(n), e: b64u(E), d: b64u(d), p: b64u(p), q: b64u(q), dp: b64u(d % (p - 1n)), dq: b64u(d % (q - 1n)), qi: b64u(modInverse(q, p)) };
}

function primeFrom(text: string): bigint {
  const bytes = fromBase64Url(text, 'pairing prime');
  if (bytes.length === 0 || bytes[0] === 0) fail('bad_request', 'pairing link: a prime has leading zero bytes');
  return bytesToBigInt(bytes);
}

function encodeKey(jwk: JwkLike, what: string): string {
  if (jwk.kty !== 'RSA' || typeof jwk.p !== 'string' || typeof jwk.q !== 'string') fail('bad_request', `pairing: the ${what} key must be an RSA private JWK with p and q`);
  if (jwk.e !== undefined && jwk.e !== 'AQAB') fail('bad_key', 'RSA public exponent must be 65537');
  // Re-encode through BigInt so leading zeros (some encoders keep them) never reach the link.
  const p = bytesToBigInt(fromBase64Url(jwk.p, 'p'));
  const q = bytesToBigInt(fromBase64Url(jwk.q, 'q'));
  return `${b64u(p)}.${b64u(q)}`;
}

function decodeKey(value: string): RsaPrivateJwk {
  const parts = value.split('.');
  if (parts.length !== 2) fail('bad_request', 'pairing link: a key is two primes separated by "."');
  return rsaJwkFromPrimes(primeFrom(parts[0]!), primeFrom(parts[1]!));
}

/** 'pair=1&t=P.Q[&r=P.Q][&l=label]' (without '#'). */
export function encodePairingFragment(keys: PairingKeys): string {
  let out = `pair=${PAIRING_VERSION}&t=${encodeKey(keys.table, 'table')}`;
  if (keys.recipient) out += `&r=${encodeKey(keys.recipient, 'recipient')}`;
  if (keys.label !== undefined && keys.label !== '') {
    if (keys.label.length > MAX_LABEL_CHARS) fail('bad_request', `pairing: a label has at most ${MAX_LABEL_CHARS} characters`);
    out += `&l=${encodeURIComponent(keys.label)}`;
  }
  return out;
}

/** Whether a location.hash (with or without '#') is a pairing fragment. */
export function isPairingFragment(fragment: string): boolean {
  return /^#?pair=/.test(fragment);
}

/** The keys in a pairing fragment ('#' optional), as full JWKs; P2pdbError('bad_request') on anything else. */
export function decodePairingFragment(fragment: string): DecodedPairing {
  try {
    const text = fragment.startsWith('#') ? fragment.slice(1) : fragment;
    const fields = new Map<string, string>();
    for (const part of text.split('&')) {
      const eq = part.indexOf('=');
      if (eq <= 0) fail('bad_request', 'pairing link: malformed field');
      const name = part.slice(0, eq);
      if (fields.has(name)) fail('bad_request', `pairing link: field ${name} appears twice`);
      fields.set(name, part.slice(eq + 1));
    }
    if (fields.get('pair') !== PAIRING_VERSION) fail('bad_request', 'pairing link: unknown version (expected pair=1)');
    const t = fields.get('t');
    if (!t) fail('bad_request', 'pairing link: no table key (t=)');
    const out: DecodedPairing = { table: decodeKey(t) };
    const r = fields.get('r');
    if (r !== undefined) out.recipient = decodeKey(r);
    const l = fields.get('l');
    if (l !== undefined) {
      let label: string;
      try {
        label = decodeURIComponent(l);
      } catch {
        fail('bad_request', 'pairing link: the label is not percent-encoded UTF-8');
      }
      if (label.length > MAX_LABEL_CHARS) fail('bad_request', `pairing link: a label has at most ${MAX_LABEL_CHARS} characters`);
      if (label !== '') out.label = label;
    }
    return out;
  } catch (e) {
    if (isP2pdbError(e) && e.code === 'bad_request') throw e;
    fail('bad_request', `pairing link: ${(e as Error).message}`);
  }
}

/** The link to a node's browser app that pairs these keys; origin like 'http://abc…xyz.onion'. */
export function pairingLink(origin: string, keys: PairingKeys): string {
  return `${origin.replace(/\/+$/, '')}/#${encodePairingFragment(keys)}`;
}
