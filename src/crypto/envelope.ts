/**
 * Payload envelope v1: a fresh AES-256-GCM key per entry, wrapped with RSA-OAEP (SHA-256,
 * MGF1-SHA-256, empty label) to the recipient's public key.
 *
 *   0x01 | u16 BE wrapped-key length | wrapped key | 12-byte IV | ciphertext | 16-byte tag
 *
 * The GCM additional data is the header (version, length, wrapped key), so a wrapped key
 * cannot be paired with another ciphertext.
 */
import { constants, createCipheriv, createDecipheriv, privateDecrypt, publicEncrypt, randomBytes, type KeyObject } from 'node:crypto';
import { fail } from '../errors.js';

export const ENVELOPE_VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const AES_KEY_BYTES = 32;

const oaep = (key: KeyObject) => ({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' });

export function sealEnvelope(recipient: KeyObject, plaintext: Uint8Array): Buffer {
  const aesKey = randomBytes(AES_KEY_BYTES);
  const wrapped = publicEncrypt(oaep(recipient), aesKey);
  const header = Buffer.alloc(3);
  header[0] = ENVELOPE_VERSION;
  header.writeUInt16BE(wrapped.length, 1);
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', aesKey, iv);
  cipher.setAAD(Buffer.concat([header, wrapped]));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([header, wrapped, iv, body, cipher.getAuthTag()]);
}

export interface EnvelopeParts {
  aad: Buffer;
  wrappedKey: Buffer;
  iv: Buffer;
  ciphertext: Buffer;
  tag: Buffer;
}

/** Splits an envelope without any key; used by readers and by tests of the layout. */
export function splitEnvelope(envelope: Uint8Array): EnvelopeParts {
  const buf = Buffer.from(envelope.buffer, envelope.byteOffset, envelope.byteLength);
  if (buf.length < 3 || buf[0] !== ENVELOPE_VERSION) fail('decrypt_failed', 'unknown envelope version');
  const wrappedLength = buf.readUInt16BE(1);
  const headerEnd = 3 + wrappedLength;
  if (buf.length < headerEnd + IV_BYTES + TAG_BYTES) fail('decrypt_failed', 'envelope is truncated');
  return {
    aad: buf.subarray(0, headerEnd),
    wrappedKey: buf.subarray(3, headerEnd),
    iv: buf.subarray(headerEnd, headerEnd + IV_BYTES),
    ciphertext: buf.subarray(headerEnd + IV_BYTES, buf.length - TAG_BYTES),
    tag: buf.subarray(buf.length - TAG_BYTES),
  };
}

export function openEnvelope(recipientPrivate: KeyObject, envelope: Uint8Array): Buffer {
  const parts = splitEnvelope(envelope);
  let aesKey: Buffer;
  try {
    aesKey = privateDecrypt(oaep(recipientPrivate), parts.wrappedKey);
  } catch {
    fail('decrypt_failed', 'the key could not be unwrapped: not addressed to this key');
  }
  if (aesKey.length !== AES_KEY_BYTES) fail('decrypt_failed', 'wrapped key has the wrong length');
  try {
    const decipher = createDecipheriv('aes-256-gcm', aesKey, parts.iv);
    decipher.setAAD(parts.aad);
    decipher.setAuthTag(parts.tag);
    return Buffer.concat([decipher.update(parts.ciphertext), decipher.final()]);
  } catch {
    fail('decrypt_failed', 'ciphertext failed authentication');
  }
}
