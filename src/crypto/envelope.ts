/**
 * Payload envelope v1 on node:crypto. The layout, constants and parsing are in envelope-format.ts
 * (shared with forge.ts and the browser's WebCrypto backend); this module only wraps, encrypts
 * and decrypts.
 */
import { constants, createCipheriv, createDecipheriv, privateDecrypt, publicEncrypt, randomBytes, type KeyObject } from 'node:crypto';
import { AES_KEY_BYTES, IV_BYTES, authenticationFailed, buildEnvelope, checkUnwrappedKey, envelopeHeader, parseEnvelope, unwrapFailed, type EnvelopeParts as Parts } from './envelope-format.js';

export { ENVELOPE_VERSION } from './envelope-format.js';

/** The parts as Buffers (views into the envelope), for node callers that compare or hash them. */
export type EnvelopeParts = Parts<Buffer>;

const oaep = (key: KeyObject) => ({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' });
const asBuffer = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

export function sealEnvelope(recipient: KeyObject, plaintext: Uint8Array): Buffer {
  const aesKey = randomBytes(AES_KEY_BYTES);
  const header = envelopeHeader(publicEncrypt(oaep(recipient), aesKey));
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', aesKey, iv);
  cipher.setAAD(header);
  const sealed = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  return asBuffer(buildEnvelope(header, iv, sealed));
}

/** Splits an envelope without any key; used by readers and by tests of the layout. */
export function splitEnvelope(envelope: Uint8Array): EnvelopeParts {
  return parseEnvelope(asBuffer(envelope));
}

export function openEnvelope(recipientPrivate: KeyObject, envelope: Uint8Array): Buffer {
  const parts = splitEnvelope(envelope);
  let aesKey: Buffer;
  try {
    aesKey = privateDecrypt(oaep(recipientPrivate), parts.wrappedKey);
  } catch {
    unwrapFailed();
  }
  checkUnwrappedKey(aesKey);
  try {
    const decipher = createDecipheriv('aes-256-gcm', aesKey, parts.iv);
    decipher.setAAD(parts.aad);
    decipher.setAuthTag(parts.tag);
    return Buffer.concat([decipher.update(parts.ciphertext), decipher.final()]);
  } catch {
    authenticationFailed();
  }
}
