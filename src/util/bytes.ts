/** Encoding helpers shared by the wire format. Strict: they refuse what they cannot round-trip. */
import { fail } from '../errors.js';

const HEX_RE = /^[0-9a-f]*$/;

export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

/** Lower-case hex of an exact byte length (ids and fingerprints). */
export function fromHex(s: unknown, bytes: number, field: string): Buffer {
  if (typeof s !== 'string' || s.length !== bytes * 2 || !HEX_RE.test(s)) {
    fail('malformed', `${field} must be ${bytes * 2} lower-case hex characters`);
  }
  return Buffer.from(s, 'hex');
}

export function toBase64(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');
}

/**
 * Standard base64 with padding, canonical only: anything Buffer would silently skip or
 * accept (whitespace, the URL-safe alphabet, non-zero padding bits) is refused. Checked by
 * re-encoding, which costs far less than a regular expression over the whole string.
 */
export function fromBase64(s: unknown, field: string, maxBytes = Infinity): Buffer {
  if (typeof s !== 'string' || s.length % 4 !== 0) fail('malformed', `${field} must be standard padded base64`);
  if ((s.length / 4) * 3 > maxBytes + 2) {
    fail('payload_too_large', `${field} is larger than ${maxBytes} bytes`);
  }
  const out = Buffer.from(s, 'base64');
  if (out.toString('base64') !== s) fail('malformed', `${field} must be standard padded base64`);
  if (out.length > maxBytes) fail('payload_too_large', `${field} is larger than ${maxBytes} bytes`);
  return out;
}

/** A copy that owns its memory (slices of big buffers drag the whole pool through postMessage and caches). */
export function ownedCopy(b: Uint8Array): Buffer {
  const out = Buffer.allocUnsafeSlow(b.byteLength);
  out.set(b);
  return out;
}
