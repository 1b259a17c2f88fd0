/**
 * Key handling for applications: RSA key pairs (tables and users alike), their fingerprints,
 * and import/export as PEM or JWK. Keys are node:crypto KeyObjects throughout.
 */
import { createPrivateKey, createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { generateRsaKeyPair, parsePrivateKey, parsePublicKey } from '../crypto/keys.js';
import { fail } from '../errors.js';
import { toHex } from '../util/bytes.js';

export interface KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** SHA-256 of the canonical SPKI, lower-case hex: the key's name on the wire (tables=, recipients=). */
  fingerprint: string;
}

export interface PublicKey {
  publicKey: KeyObject;
  fingerprint: string;
}

/** A new RSA key pair (2048 to 4096 bits, exponent 65537). */
export async function generateKeys(bits = 2048): Promise<KeyPair> {
  const pem = await generateRsaKeyPair(bits);
  return importPrivateKey(pem.privateKey);
}

/** A private key from PEM (PKCS#8 or PKCS#1) or a private RSA JWK; checks the size and exponent policy. */
export function importPrivateKey(input: string | JsonWebKey): KeyPair {
  let pem: string;
  if (typeof input === 'string') pem = input;
  else {
    if (input.kty !== 'RSA' || typeof input.d !== 'string') fail('bad_key', 'expected a private RSA JWK');
    try {
      pem = createPrivateKey({ key: input, format: 'jwk' }).export({ type: 'pkcs8', format: 'pem' }).toString();
    } catch {
      fail('bad_key', 'not a readable private RSA JWK');
    }
  }
  const { key, publicKey } = parsePrivateKey(pem);
  return { privateKey: key, publicKey: publicKey.key, fingerprint: toHex(publicKey.fingerprint) };
}

/** A public key from PEM, SPKI DER bytes or a public RSA JWK. */
export function importPublicKey(input: string | Uint8Array | JsonWebKey): PublicKey {
  let info;
  if (typeof input === 'string' || input instanceof Uint8Array) info = parsePublicKey(input);
  else {
    let der: Buffer;
    try {
      der = createPublicKey({ key: { kty: input.kty, n: input.n, e: input.e } as JsonWebKey, format: 'jwk' }).export({ type: 'spki', format: 'der' });
    } catch {
      fail('bad_key', 'not a readable RSA JWK');
    }
    info = parsePublicKey(der);
  }
  return { publicKey: info.key, fingerprint: toHex(info.fingerprint) };
}

/** The fingerprint of a public or private key. */
export function fingerprintOf(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return toHex(parsePublicKey(pub.export({ type: 'spki', format: 'der' })).fingerprint);
}

/** PEM (PKCS#8, unencrypted: handle with care) or a full private JWK (as the pairing link carries). */
export function exportPrivateKey(key: KeyObject, format: 'pem' | 'jwk' = 'pem'): string | JsonWebKey {
  if (key.type !== 'private') fail('bad_key', 'not a private key');
  return format === 'jwk' ? key.export({ format: 'jwk' }) : key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** PEM (SPKI), JWK, or the canonical SPKI DER bytes that go on the wire. */
export function exportPublicKey(key: KeyObject, format: 'pem' | 'jwk' | 'der' = 'pem'): string | JsonWebKey | Buffer {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  if (format === 'jwk') return pub.export({ format: 'jwk' });
  if (format === 'der') return pub.export({ type: 'spki', format: 'der' });
  return pub.export({ type: 'spki', format: 'pem' }).toString();
}
