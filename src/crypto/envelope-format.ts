/**
 * Payload envelope v1, the format only (docs/PROTOCOL.md §4): a fresh AES-256-GCM key per entry,
 * wrapped with RSA-OAEP (SHA-256, MGF1-SHA-256, empty label) to the recipient's public key.
 *
 *   0x01 | u16 BE wrapped-key length | wrapped key | 12-byte IV | ciphertext | 16-byte tag
 *
 * The GCM additional data is the header (version, length, wrapped key), so a wrapped key
 * cannot be paired with another ciphertext.
 *
 * Layout, constants, parsing and building live here once, over Uint8Array and without any
 * crypto, so that the three backends (envelope.ts on node:crypto, forge.ts on node-forge, and
 * browser-crypto.ts on WebCrypto) keep only their cipher calls and cannot drift apart. No Buffer
 * and no node: imports: the browser app bundles this.
 */
import { fail } from '../errors.js';

export const ENVELOPE_VERSION = 1;
export const AES_KEY_BYTES = 32;
export const IV_BYTES = 12;
export const TAG_BYTES = 16;
/** Version byte and the u16 wrapped-key length. */
const PREFIX_BYTES = 3;

export interface EnvelopeParts<B extends Uint8Array = Uint8Array> {
  /** The header (version, length, wrapped key): the GCM additional data. */
  aad: B;
  wrappedKey: B;
  iv: B;
  ciphertext: B;
  tag: B;
  /** Ciphertext and tag together, as WebCrypto takes them. */
  sealed: B;
}

/** Splits an envelope without any key (views, no copies); decrypt_failed when it cannot be one. */
export function parseEnvelope<B extends Uint8Array>(envelope: B): EnvelopeParts<B> {
  if (envelope.length < PREFIX_BYTES || envelope[0] !== ENVELOPE_VERSION) fail('decrypt_failed', 'unknown envelope version');
  const headerEnd = PREFIX_BYTES + ((envelope[1]! << 8) | envelope[2]!);
  if (envelope.length < headerEnd + IV_BYTES + TAG_BYTES) fail('decrypt_failed', 'envelope is truncated');
  // subarray on a Buffer is a Buffer: each backend gets its own byte type back.
  const part = (start: number, end?: number) => envelope.subarray(start, end) as B;
  return {
    aad: part(0, headerEnd),
    wrappedKey: part(PREFIX_BYTES, headerEnd),
    iv: part(headerEnd, headerEnd + IV_BYTES),
    ciphertext: part(headerEnd + IV_BYTES, envelope.length - TAG_BYTES),
    tag: part(envelope.length - TAG_BYTES),
    sealed: part(headerEnd + IV_BYTES),
  };
}

/** The header for a wrapped key: what GCM authenticates as additional data, and the envelope's start. */
export function envelopeHeader(wrappedKey: Uint8Array): Uint8Array {
  if (wrappedKey.length > 0xffff) fail('internal', 'wrapped key too long for the envelope header');
  const header = new Uint8Array(PREFIX_BYTES + wrappedKey.length);
  header[0] = ENVELOPE_VERSION;
  header[1] = wrappedKey.length >> 8;
  header[2] = wrappedKey.length & 0xff;
  header.set(wrappedKey, PREFIX_BYTES);
  return header;
}

/** header | iv | sealed, where `sealed` is the ciphertext followed by its tag (as WebCrypto returns it). */
export function buildEnvelope(header: Uint8Array, iv: Uint8Array, sealed: Uint8Array): Uint8Array {
  if (iv.length !== IV_BYTES) fail('internal', `the envelope IV must be ${IV_BYTES} bytes`);
  if (sealed.length < TAG_BYTES) fail('internal', 'the sealed part must end with the GCM tag');
  const out = new Uint8Array(header.length + IV_BYTES + sealed.length);
  out.set(header, 0);
  out.set(iv, header.length);
  out.set(sealed, header.length + IV_BYTES);
  return out;
}

/** An unwrapped key that is not an AES-256 key means the envelope was not made for this reader. */
export function checkUnwrappedKey(aesKey: { length: number }): void {
  if (aesKey.length !== AES_KEY_BYTES) fail('decrypt_failed', 'wrapped key has the wrong length');
}

/** The one message for an RSA-OAEP unwrap that fails, whichever backend tried. */
export function unwrapFailed(): never {
  fail('decrypt_failed', 'the key could not be unwrapped: not addressed to this key');
}

/** The one message for a GCM tag that does not verify, whichever backend tried. */
export function authenticationFailed(): never {
  fail('decrypt_failed', 'ciphertext failed authentication');
}
