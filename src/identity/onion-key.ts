/**
 * A node's identity: an Ed25519 key whose public half is its v3 onion address.
 *
 * - address = base32(pubkey | checksum | 0x03) + ".onion", checksum = SHA3-256(".onion checksum" | pubkey | 0x03)[0..2]
 * - Tor's ADD_ONION wants the 64-byte *expanded* secret key (SHA-512 of the seed, clamped);
 *   we keep the 32-byte seed so the same key also signs hellos with standard Ed25519.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { fail } from '../errors.js';

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';
const ONION_VERSION = 3;
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export interface OnionIdentity {
  /** 32-byte Ed25519 seed: the secret to keep (file mode 0600). */
  seed: Buffer;
  publicKey: Buffer;
  /** "<56 base32 chars>.onion" */
  address: string;
  privateKey: KeyObject;
}

export function base32Encode(bytes: Uint8Array): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

export function base32Decode(text: string): Buffer {
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const ch of text) {
    const v = BASE32.indexOf(ch);
    if (v < 0) fail('malformed', 'not base32');
    value = ((value << 5) | v) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

function checksum(publicKey: Uint8Array): Buffer {
  return createHash('sha3-256')
    .update('.onion checksum')
    .update(publicKey)
    .update(Buffer.from([ONION_VERSION]))
    .digest()
    .subarray(0, 2);
}

export function onionAddressOf(publicKey: Uint8Array): string {
  if (publicKey.length !== 32) fail('bad_key', 'an Ed25519 public key is 32 bytes');
  return base32Encode(Buffer.concat([publicKey, checksum(publicKey), Buffer.from([ONION_VERSION])])) + '.onion';
}

/** The Ed25519 public key inside a v3 onion address, after checking its checksum and version. */
export function publicKeyOfOnion(address: string): Buffer {
  const m = /^([a-z2-7]{56})\.onion$/.exec(address);
  if (!m) fail('malformed', 'not a v3 onion address');
  const raw = base32Decode(m[1]!);
  const publicKey = raw.subarray(0, 32);
  if (raw[34] !== ONION_VERSION || !checksum(publicKey).equals(raw.subarray(32, 34))) {
    fail('malformed', 'onion address checksum or version is wrong');
  }
  return Buffer.from(publicKey);
}

export function identityFromSeed(seed: Uint8Array): OnionIdentity {
  if (seed.length !== 32) fail('bad_key', 'an Ed25519 seed is 32 bytes');
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const jwk = createPublicKey(privateKey).export({ format: 'jwk' });
  const publicKey = Buffer.from(jwk.x!, 'base64url');
  return { seed: Buffer.from(seed), publicKey, address: onionAddressOf(publicKey), privateKey };
}

export function newIdentity(): OnionIdentity {
  const { privateKey } = generateKeyPairSync('ed25519');
  const d = privateKey.export({ format: 'jwk' }).d!;
  return identityFromSeed(Buffer.from(d, 'base64url'));
}

/** Tor's ADD_ONION key blob: base64 of SHA-512(seed), clamped as Ed25519 does. */
export function torKeyBlob(seed: Uint8Array): string {
  const h = createHash('sha512').update(seed).digest();
  h[0]! &= 248;
  h[31]! &= 127;
  h[31]! |= 64;
  return h.toString('base64');
}

export function signAsOnion(identity: OnionIdentity, message: Uint8Array): Buffer {
  return sign(null, message, identity.privateKey);
}

/** Verifies a signature against the key that the claimed onion address encodes. */
export function verifyOnionSignature(address: string, message: Uint8Array, signature: Uint8Array): boolean {
  const publicKey = publicKeyOfOnion(address);
  const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: publicKey.toString('base64url') }, format: 'jwk' });
  try {
    return verify(null, message, key, signature);
  } catch {
    return false;
  }
}
