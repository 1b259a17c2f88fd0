/**
 * One crypto interface for the browser, two backends:
 * - WebCrypto where `crypto.subtle` exists (secure contexts: localhost, Tor Browser on .onion);
 * - node-forge where it does not (plain Chromium reaching http://x.onion through SOCKS). Pure JS,
 *   30–50x slower: about 27 RSA decrypts and 24 signs per second.
 * Both speak the protocol's parameters exactly: RSA-PSS SHA-256 / MGF1-SHA-256 / salt 32,
 * envelope v1 (RSA-OAEP-SHA-256 wrapping AES-256-GCM, header as AAD; layout and parsing from
 * src/crypto/envelope-format.ts, shared with the node's backends), SHA-256.
 *
 * Private keys are held as PKCS#8 DER at rest (encrypted, see src/web/keystore.ts) and as
 * non-extractable CryptoKeys or forge objects in use. Key-format work (PEM, JWK, SPKI
 * derivation) is ASN.1 only and done with forge for both backends, so both agree byte for byte.
 * No Buffer, no node: imports; WebCrypto is reached through a minimal structural type so this
 * compiles both in the Node build and in the DOM build.
 */
import forge from 'node-forge';
import { AES_KEY_BYTES, IV_BYTES, TAG_BYTES, buildEnvelope, checkUnwrappedKey, envelopeHeader, parseEnvelope, unwrapFailed } from '../crypto/envelope-format.js';
import * as F from '../crypto/forge.js';
import { fail } from '../errors.js';
import { fromBase64Url, toBase64Url, toHex } from './base64url.js';

export type BackendKind = 'webcrypto' | 'forge';

export const PSS_SALT_BYTES = 32;

export interface BrowserPublicKey {
  spki: Uint8Array;
  fingerprint: Uint8Array;
  fingerprintHex: string;
  bits: number;
  seal(plaintext: Uint8Array): Promise<Uint8Array>;
  verify(message: Uint8Array, signature: Uint8Array): Promise<boolean>;
}

export interface BrowserPrivateKey {
  publicKey: BrowserPublicKey;
  sign(message: Uint8Array): Promise<Uint8Array>;
  /** Opens an envelope v1 addressed to this key; P2pdbError('decrypt_failed') otherwise. */
  open(envelope: Uint8Array): Promise<Uint8Array>;
}

export interface CryptoBackend {
  readonly kind: BackendKind;
  sha256(bytes: Uint8Array): Promise<Uint8Array>;
  /** A fresh RSA key as PKCS#8 DER. */
  generatePkcs8(bits?: number): Promise<Uint8Array>;
  privateKey(pkcs8: Uint8Array): Promise<BrowserPrivateKey>;
  publicKey(spki: Uint8Array): Promise<BrowserPublicKey>;
  /** PBKDF2-HMAC-SHA-256 to a 32-byte key (the keystore's KDF: both backends have it). */
  pbkdf2(passphrase: string, salt: Uint8Array, iterations: number): Promise<Uint8Array>;
  aesGcmEncrypt(key: Uint8Array, iv: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array): Promise<Uint8Array>;
  /** P2pdbError('decrypt_failed') when authentication fails. */
  aesGcmDecrypt(key: Uint8Array, iv: Uint8Array, sealed: Uint8Array, aad?: Uint8Array): Promise<Uint8Array>;
}

// --- key formats (ASN.1 via forge; identical for both backends) ---

type ForgePrivate = forge.pki.rsa.PrivateKey;

function forgePrivateFromPkcs8(pkcs8: Uint8Array): ForgePrivate {
  try {
    return forge.pki.privateKeyFromAsn1(forge.asn1.fromDer(F.toBinary(pkcs8))) as ForgePrivate;
  } catch {
    fail('bad_key', 'not a readable PKCS#8 private key');
  }
}

function pkcs8FromForge(key: ForgePrivate): Uint8Array {
  return F.fromBinary(forge.asn1.toDer(forge.pki.wrapRsaPrivateKey(forge.pki.privateKeyToAsn1(key))).getBytes());
}

/** Canonical SPKI DER of a private key's public half, with the size and exponent policy checked. */
export function spkiOfPkcs8(pkcs8: Uint8Array): { spki: Uint8Array; bits: number } {
  const key = forgePrivateFromPkcs8(pkcs8);
  const info = F.describePublicKey(forge.pki.setRsaPublicKey(key.n, key.e));
  return { spki: info.spki, bits: info.bits };
}

/** PKCS#8 DER from a PEM (PKCS#8 or PKCS#1 "RSA PRIVATE KEY"), refusing keys p2pdb does not accept. */
export function pkcs8FromPem(pem: string): Uint8Array {
  return pkcs8FromForge(F.parsePrivateKey(pem).key);
}

export function pemFromPkcs8(pkcs8: Uint8Array): string {
  return F.exportPrivatePem(forgePrivateFromPkcs8(pkcs8));
}

export function publicPemFromSpki(spki: Uint8Array): string {
  return F.exportPublicPem(F.parsePublicKey(spki).key);
}

/** SPKI DER from a public key PEM (or a private key PEM's public half). */
export function spkiFromPem(pem: string): Uint8Array {
  return F.parsePublicKey(pem).spki;
}

const big = (b64url: unknown, what: string): forge.jsbn.BigInteger => {
  if (typeof b64url !== 'string' || b64url === '') fail('bad_key', `JWK field ${what} is missing`);
  return new forge.jsbn.BigInteger(toHex(fromBase64Url(b64url, `JWK field ${what}`)), 16);
};

/** PKCS#8 DER from a full RSA private JWK (as decodePairingFragment returns it). */
export function pkcs8FromJwk(jwk: Record<string, unknown>): Uint8Array {
  if (jwk.kty !== 'RSA') fail('bad_key', 'expected an RSA JWK');
  const key = forge.pki.setRsaPrivateKey(
    big(jwk.n, 'n'), big(jwk.e, 'e'), big(jwk.d, 'd'), big(jwk.p, 'p'), big(jwk.q, 'q'),
    big(jwk.dp, 'dp'), big(jwk.dq, 'dq'), big(jwk.qi, 'qi'),
  );
  F.describePublicKey(forge.pki.setRsaPublicKey(key.n, key.e));
  return pkcs8FromForge(key);
}

/** The RSA private JWK of a PKCS#8 key (for pairing links made in the browser). */
export function jwkFromPkcs8(pkcs8: Uint8Array): Record<string, string> {
  const k = forgePrivateFromPkcs8(pkcs8);
  const b = (n: forge.jsbn.BigInteger) => {
    const hex = n.toString(16);
    return toBase64Url(F.fromBinary(forge.util.hexToBytes(hex.length % 2 ? '0' + hex : hex)));
  };
  return { kty: 'RSA', n: b(k.n), e: b(k.e), d: b(k.d), p: b(k.p), q: b(k.q), dp: b(k.dP), dq: b(k.dQ), qi: b(k.qInv) };
}

// --- randomness ---

function randomBytes(n: number): Uint8Array {
  const c = (globalThis as unknown as { crypto?: { getRandomValues?(a: Uint8Array): Uint8Array } }).crypto;
  if (typeof c?.getRandomValues !== 'function') fail('internal', 'no crypto.getRandomValues: refusing to encrypt with a weak random source');
  return c.getRandomValues(new Uint8Array(n));
}

// --- WebCrypto ---

type Key = unknown;
/** The part of SubtleCrypto used here, typed loosely so Node's and the DOM's typings both fit. */
interface SubtleLike {
  digest(alg: string, data: Uint8Array): Promise<ArrayBuffer>;
  generateKey(alg: object, extractable: boolean, usages: string[]): Promise<{ privateKey: Key }>;
  importKey(format: string, data: Uint8Array | object, alg: object | string, extractable: boolean, usages: string[]): Promise<Key>;
  exportKey(format: string, key: Key): Promise<ArrayBuffer>;
  sign(alg: object, key: Key, data: Uint8Array): Promise<ArrayBuffer>;
  verify(alg: object, key: Key, signature: Uint8Array, data: Uint8Array): Promise<boolean>;
  encrypt(alg: object, key: Key, data: Uint8Array): Promise<ArrayBuffer>;
  decrypt(alg: object, key: Key, data: Uint8Array): Promise<ArrayBuffer>;
  deriveBits(alg: object, key: Key, length: number): Promise<ArrayBuffer>;
}

export function webCryptoAvailable(): boolean {
  return typeof (globalThis as unknown as { crypto?: { subtle?: unknown } }).crypto?.subtle === 'object';
}

function subtle(): SubtleLike {
  const s = (globalThis as unknown as { crypto?: { subtle?: SubtleLike } }).crypto?.subtle;
  if (!s) fail('internal', 'WebCrypto is not available here (not a secure context)');
  return s;
}

const PSS = { name: 'RSA-PSS', hash: 'SHA-256' };
const OAEP = { name: 'RSA-OAEP', hash: 'SHA-256' };
const u8 = (b: ArrayBuffer) => new Uint8Array(b);

function webCryptoBackend(): CryptoBackend {
  const s = subtle();
  const publicCache = new Map<string, Promise<BrowserPublicKey>>();
  const sha256 = async (bytes: Uint8Array) => u8(await s.digest('SHA-256', bytes));
  const aesKey = (raw: Uint8Array, usage: string) => s.importKey('raw', raw, 'AES-GCM', false, [usage]);

  async function makePublic(spki: Uint8Array, bits: number): Promise<BrowserPublicKey> {
    const [verifyKey, encryptKey, fingerprint] = await Promise.all([
      s.importKey('spki', spki, PSS, false, ['verify']),
      s.importKey('spki', spki, OAEP, false, ['encrypt']),
      sha256(spki),
    ]);
    return {
      spki, fingerprint, fingerprintHex: toHex(fingerprint), bits,
      async seal(plaintext) {
        const raw = randomBytes(AES_KEY_BYTES);
        const wrapped = u8(await s.encrypt({ name: 'RSA-OAEP' }, encryptKey, raw));
        const header = envelopeHeader(wrapped);
        const iv = randomBytes(IV_BYTES);
        const sealed = u8(await s.encrypt({ name: 'AES-GCM', iv, additionalData: header, tagLength: TAG_BYTES * 8 }, await aesKey(raw, 'encrypt'), plaintext));
        return buildEnvelope(header, iv, sealed);
      },
      async verify(message, signature) {
        try {
          return await s.verify({ name: 'RSA-PSS', saltLength: PSS_SALT_BYTES }, verifyKey, signature, message);
        } catch {
          return false;
        }
      },
    };
  }

  const backend: CryptoBackend = {
    kind: 'webcrypto',
    sha256,
    async generatePkcs8(bits = 2048) {
      const pair = await s.generateKey({ ...PSS, modulusLength: bits, publicExponent: Uint8Array.of(1, 0, 1) }, true, ['sign', 'verify']);
      return u8(await s.exportKey('pkcs8', pair.privateKey));
    },
    async privateKey(pkcs8) {
      const { spki } = spkiOfPkcs8(pkcs8);
      const [signKey, decryptKey, publicKey] = await Promise.all([
        s.importKey('pkcs8', pkcs8, PSS, false, ['sign']),
        s.importKey('pkcs8', pkcs8, OAEP, false, ['decrypt']),
        backend.publicKey(spki),
      ]);
      return {
        publicKey,
        async sign(message) {
          return u8(await s.sign({ name: 'RSA-PSS', saltLength: PSS_SALT_BYTES }, signKey, message));
        },
        async open(envelope) {
          const parts = parseEnvelope(envelope);
          let raw: Uint8Array;
          try {
            raw = u8(await s.decrypt({ name: 'RSA-OAEP' }, decryptKey, parts.wrappedKey));
          } catch {
            unwrapFailed();
          }
          checkUnwrappedKey(raw);
          return backend.aesGcmDecrypt(raw, parts.iv, parts.sealed, parts.aad);
        },
      };
    },
    publicKey(spki) {
      const hit = publicCache.get(toHex(spki));
      if (hit) return hit;
      const made = (async () => {
        const info = F.parseWireSpki(spki); // canonical DER and the key policy, as the node checks
        return makePublic(info.spki, info.bits);
      })();
      made.catch(() => publicCache.delete(toHex(spki)));
      if (publicCache.size > 256) publicCache.clear();
      publicCache.set(toHex(spki), made);
      return made;
    },
    async pbkdf2(passphrase, salt, iterations) {
      const base = await s.importKey('raw', new TextEncoder().encode(passphrase), 'PBKDF2', false, ['deriveBits']);
      return u8(await s.deriveBits({ name: 'PBKDF2', hash: 'SHA-256', salt, iterations }, base, 256));
    },
    async aesGcmEncrypt(key, iv, plaintext, aad) {
      const alg = aad ? { name: 'AES-GCM', iv, additionalData: aad, tagLength: 128 } : { name: 'AES-GCM', iv, tagLength: 128 };
      return u8(await s.encrypt(alg, await aesKey(key, 'encrypt'), plaintext));
    },
    async aesGcmDecrypt(key, iv, sealed, aad) {
      const alg = aad ? { name: 'AES-GCM', iv, additionalData: aad, tagLength: 128 } : { name: 'AES-GCM', iv, tagLength: 128 };
      try {
        return u8(await s.decrypt(alg, await aesKey(key, 'decrypt'), sealed));
      } catch {
        fail('decrypt_failed', 'ciphertext failed authentication');
      }
    },
  };
  return backend;
}

// --- node-forge ---

function forgeBackend(): CryptoBackend {
  const publicCache = new Map<string, BrowserPublicKey>();

  function makePublic(spki: Uint8Array): BrowserPublicKey {
    const hit = publicCache.get(toHex(spki));
    if (hit) return hit;
    const info = F.parseWireSpki(spki);
    const pub: BrowserPublicKey = {
      spki: info.spki, fingerprint: info.fingerprint, fingerprintHex: toHex(info.fingerprint), bits: info.bits,
      seal: async (plaintext) => F.sealEnvelope(info.key, plaintext),
      verify: async (message, signature) => F.verifyPss(info.key, message, signature),
    };
    if (publicCache.size > 256) publicCache.clear();
    publicCache.set(toHex(spki), pub);
    return pub;
  }

  return {
    kind: 'forge',
    sha256: async (bytes) => F.sha256(bytes),
    async generatePkcs8(bits = 2048) {
      const pem = await F.generateRsaKeyPair(bits, { pureJavaScript: true });
      return pkcs8FromPem(pem.privateKey);
    },
    async privateKey(pkcs8) {
      const key = forgePrivateFromPkcs8(pkcs8);
      const { spki } = spkiOfPkcs8(pkcs8);
      const publicKey = makePublic(spki);
      return {
        publicKey,
        sign: async (message) => F.signPss(key, message),
        open: async (envelope) => F.openEnvelope(key, envelope),
      };
    },
    publicKey: async (spki) => makePublic(spki),
    async pbkdf2(passphrase, salt, iterations) {
      const utf8 = forge.util.encodeUtf8(passphrase);
      return F.fromBinary(forge.pkcs5.pbkdf2(utf8, F.toBinary(salt), iterations, 32, forge.md.sha256.create()));
    },
    async aesGcmEncrypt(key, iv, plaintext, aad) {
      const cipher = forge.cipher.createCipher('AES-GCM', F.toBinary(key));
      cipher.start({ iv: F.toBinary(iv), ...(aad ? { additionalData: F.toBinary(aad) } : {}), tagLength: 128 });
      cipher.update(forge.util.createBuffer(F.toBinary(plaintext)));
      cipher.finish();
      return F.fromBinary(cipher.output.getBytes() + cipher.mode.tag.getBytes());
    },
    async aesGcmDecrypt(key, iv, sealed, aad) {
      if (sealed.length < TAG_BYTES) fail('decrypt_failed', 'ciphertext is truncated');
      const decipher = forge.cipher.createDecipher('AES-GCM', F.toBinary(key));
      decipher.start({
        iv: F.toBinary(iv),
        ...(aad ? { additionalData: F.toBinary(aad) } : {}),
        tagLength: 128,
        tag: forge.util.createBuffer(F.toBinary(sealed.subarray(sealed.length - TAG_BYTES))),
      });
      decipher.update(forge.util.createBuffer(F.toBinary(sealed.subarray(0, sealed.length - TAG_BYTES))));
      if (!decipher.finish()) fail('decrypt_failed', 'ciphertext failed authentication');
      return F.fromBinary(decipher.output.getBytes());
    },
  };
}

/** WebCrypto when the page has it, else node-forge; `prefer: 'forge'` forces the fallback. */
export function selectBackend(prefer?: BackendKind): CryptoBackend {
  if (prefer === 'forge' || !webCryptoAvailable()) return forgeBackend();
  return webCryptoBackend();
}
