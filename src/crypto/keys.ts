/**
 * RSA keys: parsing, canonical SPKI form, size policy and fingerprints.
 * A key's id is its fingerprint: SHA-256 of the canonical SPKI DER.
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPair as generateKeyPairCb,
  type KeyObject,
} from 'node:crypto';
import { promisify } from 'node:util';
import { fail } from '../errors.js';
import { sha256 } from './hash.js';

export const MIN_RSA_BITS = 2048;
export const MAX_RSA_BITS = 4096;
export const RSA_EXPONENT = 65537n;

export interface PublicKeyInfo {
  key: KeyObject;
  /** Canonical SPKI DER: the bytes that go on the wire and into ids. */
  spki: Buffer;
  fingerprint: Buffer;
  bits: number;
}

export interface KeyPairPem {
  publicKey: string;
  privateKey: string;
}

function checkRsaShape(key: KeyObject): number {
  if (key.asymmetricKeyType !== 'rsa') {
    fail('bad_key', `expected an RSA key, got ${key.asymmetricKeyType ?? 'unknown'}`);
  }
  const details = key.asymmetricKeyDetails ?? {};
  const bits = details.modulusLength ?? 0;
  if (bits < MIN_RSA_BITS || bits > MAX_RSA_BITS) {
    fail('key_size', `RSA keys must be ${MIN_RSA_BITS} to ${MAX_RSA_BITS} bits, this one has ${bits}`);
  }
  if (details.publicExponent !== RSA_EXPONENT) {
    fail('bad_key', 'RSA public exponent must be 65537');
  }
  return bits;
}

function describe(key: KeyObject): PublicKeyInfo {
  const bits = checkRsaShape(key);
  const spki = key.export({ type: 'spki', format: 'der' });
  return { key, spki, fingerprint: sha256(spki), bits };
}

/**
 * A public key from PEM (SPKI "PUBLIC KEY" or PKCS#1 "RSA PUBLIC KEY"), a private key PEM
 * (its public half), or SPKI DER bytes. Lenient: for user input, not for the wire.
 */
export function parsePublicKey(input: string | Uint8Array): PublicKeyInfo {
  let key: KeyObject;
  try {
    if (typeof input === 'string') {
      key = createPublicKey({ key: input, format: 'pem' });
    } else {
      key = createPublicKey({ key: Buffer.from(input), format: 'der', type: 'spki' });
    }
  } catch {
    fail('bad_key', 'not a readable public key');
  }
  return describe(key);
}

/**
 * A table key as it appears on the wire: SPKI DER that must already be canonical,
 * so one key has exactly one encoding (and so one fingerprint and one id per entry).
 */
export function parseWireSpki(der: Uint8Array): PublicKeyInfo {
  const info = parsePublicKey(der);
  if (!info.spki.equals(der)) fail('bad_key', 'table key is not canonical SPKI DER');
  return info;
}

export function parsePrivateKey(pem: string): { key: KeyObject; publicKey: PublicKeyInfo } {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch {
    fail('bad_key', 'not a readable private key (PKCS#8 or PKCS#1 PEM expected)');
  }
  const publicKey = describe(createPublicKey(key));
  return { key, publicKey };
}

export function exportPublicPem(key: KeyObject): string {
  return key.export({ type: 'spki', format: 'pem' }).toString();
}

export function exportPrivatePem(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

const generate = promisify(generateKeyPairCb);

export async function generateRsaKeyPair(bits = 2048): Promise<KeyPairPem> {
  if (!Number.isInteger(bits) || bits < MIN_RSA_BITS || bits > MAX_RSA_BITS) {
    fail('key_size', `RSA keys must be ${MIN_RSA_BITS} to ${MAX_RSA_BITS} bits`);
  }
  const { publicKey, privateKey } = await generate('rsa', {
    modulusLength: bits,
    publicExponent: Number(RSA_EXPONENT),
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return { publicKey, privateKey };
}

/**
 * Parsing SPKI costs several times a verification, so verifiers keep parsed keys.
 * Keyed by fingerprint hex; bounded, least recently used out first.
 */
export class PublicKeyCache {
  private readonly map = new Map<string, PublicKeyInfo>();
  constructor(private readonly capacity = 4096) {}

  get(spki: Uint8Array, fingerprintHex: string): PublicKeyInfo {
    const hit = this.map.get(fingerprintHex);
    if (hit) {
      this.map.delete(fingerprintHex);
      this.map.set(fingerprintHex, hit);
      return hit;
    }
    const info = parseWireSpki(spki);
    this.map.set(fingerprintHex, info);
    if (this.map.size > this.capacity) {
      const oldest = this.map.keys().next().value as string;
      this.map.delete(oldest);
    }
    return info;
  }
}
