/**
 * Base64 (standard, padded) and base64url (unpadded) codecs and BigInt <-> bytes, in pure
 * TypeScript: no Buffer and no atob, so the same code runs in Node, a page and a Web Worker.
 * Decoders are strict: they refuse anything that does not re-encode to the same text.
 */
import { fail } from '../errors.js';

const STD = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

function lookup(alphabet: string): Int16Array {
  const t = new Int16Array(128).fill(-1);
  for (let i = 0; i < 64; i++) t[alphabet.charCodeAt(i)] = i;
  return t;
}
const STD_LOOKUP = lookup(STD);
const URL_LOOKUP = lookup(URL);

function encode(bytes: Uint8Array, alphabet: string, pad: boolean): string {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += alphabet[n >>> 18]! + alphabet[(n >>> 12) & 63]! + alphabet[(n >>> 6) & 63]! + alphabet[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i]! << 16;
    out += alphabet[n >>> 18]! + alphabet[(n >>> 12) & 63]! + (pad ? '==' : '');
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += alphabet[n >>> 18]! + alphabet[(n >>> 12) & 63]! + alphabet[(n >>> 6) & 63]! + (pad ? '=' : '');
  }
  return out;
}

function decode(text: string, table: Int16Array, what: string): Uint8Array {
  const out = new Uint8Array(Math.floor((text.length * 3) / 4));
  let bits = 0;
  let acc = 0;
  let o = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const v = c < 128 ? table[c]! : -1;
    if (v < 0) fail('malformed', `${what}: not ${table === URL_LOOKUP ? 'base64url' : 'base64'}`);
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >>> bits) & 0xff;
    }
  }
  return out.subarray(0, o);
}

export function toBase64(bytes: Uint8Array): string {
  return encode(bytes, STD, true);
}

/** Standard padded base64, canonical only (the wire form of docs/PROTOCOL.md). */
export function fromBase64(text: string, what = 'base64'): Uint8Array {
  if (typeof text !== 'string' || text.length % 4 !== 0) fail('malformed', `${what}: not padded base64`);
  const body = text.replace(/={1,2}$/, '');
  const bytes = decode(body, STD_LOOKUP, what);
  if (toBase64(bytes) !== text) fail('malformed', `${what}: not canonical base64`);
  return bytes;
}

export function toBase64Url(bytes: Uint8Array): string {
  return encode(bytes, URL, false);
}

/** Unpadded base64url, canonical only. */
export function fromBase64Url(text: string, what = 'base64url'): Uint8Array {
  if (typeof text !== 'string' || text.length % 4 === 1) fail('malformed', `${what}: not base64url`);
  const bytes = decode(text, URL_LOOKUP, what);
  if (toBase64Url(bytes) !== text) fail('malformed', `${what}: not canonical base64url`);
  return bytes;
}

export function toHex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += (b < 16 ? '0' : '') + b.toString(16);
  return s;
}

export function fromHex(text: string, what = 'hex'): Uint8Array {
  if (typeof text !== 'string' || text.length % 2 !== 0 || !/^[0-9a-f]*$/.test(text)) fail('malformed', `${what}: not lower-case hex`);
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Big-endian bytes without leading zeros (0 is one zero byte). */
export function bigIntToBytes(n: bigint): Uint8Array {
  if (n < 0n) fail('internal', 'negative integers have no byte form here');
  let hex = n.toString(16);
  if (hex.length % 2) hex = '0' + hex;
  return fromHex(hex);
}

export function bytesToBigInt(bytes: Uint8Array): bigint {
  return bytes.length === 0 ? 0n : BigInt('0x' + toHex(bytes));
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
