/**
 * The same key, signature and envelope operations as keys.ts, signature.ts and envelope.ts,
 * done purely with node-forge: the backend of the browser app where WebCrypto is missing.
 * No node:crypto and no Buffer here (the module must bundle for a browser); bytes are Uint8Array.
 * Key and signature constants are repeated from the node:crypto modules because importing those
 * would pull in node:crypto; test/crypto-interop.test.ts pins them equal. The envelope's layout
 * and constants come from envelope-format.ts, which all three backends share.
 *
 * node-forge is slow (pure JS, 30–50x node:crypto): never use this on a node's hot path.
 */
import forge from 'node-forge';
import { fail, isP2pdbError } from '../errors.js';
import { AES_KEY_BYTES, IV_BYTES, TAG_BYTES, authenticationFailed, buildEnvelope, checkUnwrappedKey, envelopeHeader, parseEnvelope, unwrapFailed, type EnvelopeParts } from './envelope-format.js';

export { ENVELOPE_VERSION } from './envelope-format.js';

export const MIN_RSA_BITS = 2048;
export const MAX_RSA_BITS = 4096;
/** 65537, as forge's BigInteger prints it in hex. */
const RSA_EXPONENT_HEX = '10001';
export const PSS_SALT_BYTES = 32;

type ForgePublicKey = forge.pki.rsa.PublicKey;
type ForgePrivateKey = forge.pki.rsa.PrivateKey;

export interface ForgePublicKeyInfo {
  key: ForgePublicKey;
  /** Canonical SPKI DER as forge encodes it: equal to node:crypto's (the interop test checks). */
  spki: Uint8Array;
  fingerprint: Uint8Array;
  bits: number;
}

export interface ForgeKeyPairPem {
  publicKey: string;
  privateKey: string;
}

// --- bytes <-> forge's binary strings ---

/** Chunked: String.fromCharCode.apply on a whole payload overflows argument limits in some engines. */
export function toBinary(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i += 8192) {
    out += String.fromCharCode.apply(null, Array.from(bytes.subarray(i, i + 8192)));
  }
  return out;
}

export function fromBinary(s: string): Uint8Array {
  return forge.util.binary.raw.decode(s);
}

export function sha256(bytes: Uint8Array): Uint8Array {
  const md = forge.md.sha256.create();
  md.update(toBinary(bytes));
  return fromBinary(md.digest().getBytes());
}

/** forge writes PEM with CRLF; node:crypto with LF. LF so both sides produce the same text. */
function lf(pem: string): string {
  return pem.replace(/\r\n/g, '\n');
}

/**
 * forge seeds its PRNG from crypto.getRandomValues, or else silently from Math.random: not good
 * enough for AES keys or RSA primes, so those operations refuse to run without it.
 */
function requireStrongRandom(): void {
  const c = (globalThis as { crypto?: { getRandomValues?: unknown } }).crypto;
  if (typeof c?.getRandomValues !== 'function') fail('internal', 'no crypto.getRandomValues: refusing to make keys with a weak random source');
}

// --- keys ---

function spkiDer(key: ForgePublicKey): Uint8Array {
  return fromBinary(forge.asn1.toDer(forge.pki.publicKeyToAsn1(key)).getBytes());
}

/** Same policy as keys.ts: RSA, 2048–4096 bits, exponent 65537. */
export function describePublicKey(key: ForgePublicKey): ForgePublicKeyInfo {
  const bits = key.n.bitLength();
  if (bits < MIN_RSA_BITS || bits > MAX_RSA_BITS) {
    fail('key_size', `RSA keys must be ${MIN_RSA_BITS} to ${MAX_RSA_BITS} bits, this one has ${bits}`);
  }
  if (key.e.toString(16) !== RSA_EXPONENT_HEX) fail('bad_key', 'RSA public exponent must be 65537');
  const spki = spkiDer(key);
  return { key, spki, fingerprint: sha256(spki), bits };
}

function publicFromPrivate(key: ForgePrivateKey): ForgePublicKey {
  return forge.pki.setRsaPublicKey(key.n, key.e);
}

/** A forge key object is RSA only if it has a modulus: forge also parses Ed25519 and others. */
function asRsaPublic(key: unknown): ForgePublicKey {
  const k = key as Partial<ForgePublicKey> | null;
  if (!k || typeof k.n?.bitLength !== 'function' || typeof k.e?.toString !== 'function') {
    fail('bad_key', 'expected an RSA key');
  }
  return k as ForgePublicKey;
}

function decodeSinglePem(pem: string): forge.pem.ObjectPEM {
  let msgs: forge.pem.ObjectPEM[];
  try {
    msgs = forge.pem.decode(pem);
  } catch {
    fail('bad_key', 'not a readable PEM');
  }
  const msg = msgs[0];
  if (!msg) fail('bad_key', 'no PEM block found');
  if (msg.procType && String(msg.procType.type).includes('ENCRYPTED')) fail('bad_key', 'encrypted PEM is not supported here');
  return msg;
}

/**
 * A public key from PEM (SPKI "PUBLIC KEY", PKCS#1 "RSA PUBLIC KEY", or a private key PEM for its
 * public half) or SPKI DER bytes. Lenient like keys.ts parsePublicKey: for user input, not the wire.
 */
export function parsePublicKey(input: string | Uint8Array): ForgePublicKeyInfo {
  let key: ForgePublicKey;
  try {
    if (typeof input === 'string') {
      const msg = decodeSinglePem(input);
      const asn = forge.asn1.fromDer(msg.body);
      if (msg.type === 'PUBLIC KEY' || msg.type === 'RSA PUBLIC KEY') {
        key = asRsaPublic(forge.pki.publicKeyFromAsn1(asn));
      } else if (msg.type === 'PRIVATE KEY' || msg.type === 'RSA PRIVATE KEY') {
        key = publicFromPrivate(forge.pki.privateKeyFromAsn1(asn) as ForgePrivateKey);
      } else {
        fail('bad_key', `unexpected PEM type ${msg.type}`);
      }
    } else {
      const asn = forge.asn1.fromDer(toBinary(input));
      // publicKeyFromAsn1 also takes a bare PKCS#1 RSAPublicKey (first element an INTEGER, not the
      // AlgorithmIdentifier SEQUENCE); node:crypto reads DER as SPKI only, so refuse it here too.
      const first = Array.isArray(asn.value) ? asn.value[0] : undefined;
      if (!first || first.type !== forge.asn1.Type.SEQUENCE) fail('bad_key', 'DER input must be SPKI');
      key = asRsaPublic(forge.pki.publicKeyFromAsn1(asn));
    }
  } catch (e) {
    if (isP2pdbError(e)) throw e;
    fail('bad_key', 'not a readable public key');
  }
  return describePublicKey(key);
}

/** A table key as on the wire: SPKI DER that must already be canonical (one key, one encoding). */
export function parseWireSpki(der: Uint8Array): ForgePublicKeyInfo {
  const info = parsePublicKey(der);
  if (!bytesEqual(info.spki, der)) fail('bad_key', 'table key is not canonical SPKI DER');
  return info;
}

export function exportPublicPem(key: ForgePublicKey): string {
  return lf(forge.pki.publicKeyToPem(key));
}

/** PKCS#8 or PKCS#1 PEM (unencrypted), with the same size and exponent policy as keys.ts. */
export function parsePrivateKey(pem: string): { key: ForgePrivateKey; publicKey: ForgePublicKeyInfo } {
  let key: ForgePrivateKey;
  try {
    const msg = decodeSinglePem(pem);
    if (msg.type !== 'PRIVATE KEY' && msg.type !== 'RSA PRIVATE KEY') fail('bad_key', `unexpected PEM type ${msg.type}`);
    key = forge.pki.privateKeyFromAsn1(forge.asn1.fromDer(msg.body)) as ForgePrivateKey;
    asRsaPublic(key);
  } catch (e) {
    if (isP2pdbError(e)) throw e;
    fail('bad_key', 'not a readable private key (PKCS#8 or PKCS#1 PEM expected)');
  }
  return { key, publicKey: describePublicKey(publicFromPrivate(key)) };
}

/** PKCS#8 PEM, LF line ends: the same text node:crypto exports for the same key. */
export function exportPrivatePem(key: ForgePrivateKey): string {
  return lf(forge.pki.privateKeyInfoToPem(forge.pki.wrapRsaPrivateKey(forge.pki.privateKeyToAsn1(key))));
}

/** forge's step-wise key generation (in forge, not in its type definitions). */
interface ForgeKeyGenerationState {
  keys: { publicKey: ForgePublicKey; privateKey: ForgePrivateKey } | null;
}
interface ForgeStepApi {
  createKeyPairGenerationState(bits: number, e: number, options: { prng: unknown }): ForgeKeyGenerationState;
  /** Works for about `ms` milliseconds; true once the key pair is ready. */
  stepKeyPairGenerationState(state: ForgeKeyGenerationState, ms: number): boolean;
}

/**
 * New key pair as PEMs. forge uses node:crypto or WebCrypto when it finds them; `pureJavaScript`
 * forces its own prime search (seconds for 2048 bits), which is what a browser without either does.
 */
export async function generateRsaKeyPair(bits = 2048, options: { pureJavaScript?: boolean } = {}): Promise<ForgeKeyPairPem> {
  if (!Number.isInteger(bits) || bits < MIN_RSA_BITS || bits > MAX_RSA_BITS) {
    fail('key_size', `RSA keys must be ${MIN_RSA_BITS} to ${MAX_RSA_BITS} bits`);
  }
  requireStrongRandom();
  if (options.pureJavaScript) {
    // Not forge's callback API: wherever `Worker` exists (any browser page or worker) it starts
    // Web Workers from 'forge/prime.worker.js', which a self-contained app does not serve, and
    // key generation never finished. The step API searches here, yielding between slices.
    const rsa = forge.pki.rsa as unknown as ForgeStepApi;
    const state = rsa.createKeyPairGenerationState(bits, 0x10001, { prng: forge.random });
    while (!rsa.stepKeyPairGenerationState(state, 50)) await new Promise((resolve) => setTimeout(resolve, 0));
    const { publicKey, privateKey } = state.keys!;
    return { publicKey: exportPublicPem(publicKey), privateKey: exportPrivatePem(privateKey) };
  }
  return new Promise((resolve, reject) => {
    forge.pki.rsa.generateKeyPair({ bits, e: 0x10001 }, (err, pair) => {
      if (err) return reject(err);
      resolve({ publicKey: exportPublicPem(pair.publicKey), privateKey: exportPrivatePem(pair.privateKey) });
    });
  });
}

// --- RSA-PSS (SHA-256, MGF1-SHA-256, salt 32) ---

function pss(): unknown {
  return forge.pss.create({
    md: forge.md.sha256.create(),
    mgf: forge.mgf.mgf1.create(forge.md.sha256.create()),
    saltLength: PSS_SALT_BYTES,
  });
}

export function signPss(privateKey: ForgePrivateKey, message: Uint8Array): Uint8Array {
  const md = forge.md.sha256.create();
  md.update(toBinary(message));
  return fromBinary(privateKey.sign(md, pss()));
}

export function verifyPss(publicKey: ForgePublicKey, message: Uint8Array, signature: Uint8Array): boolean {
  const md = forge.md.sha256.create();
  md.update(toBinary(message));
  try {
    // forge throws rather than returning false on a signature of the wrong length.
    return publicKey.verify(md.digest().getBytes(), toBinary(signature), pss());
  } catch {
    return false;
  }
}

// --- envelope v1 (layout and parsing in envelope-format.ts; only the cipher calls here) ---

const oaepOptions = () => ({ md: forge.md.sha256.create(), mgf1: { md: forge.md.sha256.create() } });

export function sealEnvelope(recipient: ForgePublicKey, plaintext: Uint8Array): Uint8Array {
  requireStrongRandom();
  const aesKey = forge.random.getBytesSync(AES_KEY_BYTES);
  const header = envelopeHeader(fromBinary(recipient.encrypt(aesKey, 'RSA-OAEP', oaepOptions())));
  const iv = fromBinary(forge.random.getBytesSync(IV_BYTES));
  const cipher = forge.cipher.createCipher('AES-GCM', aesKey);
  cipher.start({ iv: toBinary(iv), additionalData: toBinary(header), tagLength: TAG_BYTES * 8 });
  cipher.update(forge.util.createBuffer(toBinary(plaintext)));
  cipher.finish();
  return buildEnvelope(header, iv, fromBinary(cipher.output.getBytes() + cipher.mode.tag.getBytes()));
}

export type ForgeEnvelopeParts = EnvelopeParts;

/** Splits an envelope without any key (the shared parser; kept here for forge callers and tests). */
export function splitEnvelope(envelope: Uint8Array): ForgeEnvelopeParts {
  return parseEnvelope(envelope);
}

export function openEnvelope(recipientPrivate: ForgePrivateKey, envelope: Uint8Array): Uint8Array {
  const parts = parseEnvelope(envelope);
  let aesKey: string;
  try {
    aesKey = recipientPrivate.decrypt(toBinary(parts.wrappedKey), 'RSA-OAEP', oaepOptions());
  } catch {
    unwrapFailed();
  }
  checkUnwrappedKey(aesKey);
  const decipher = forge.cipher.createDecipher('AES-GCM', aesKey);
  decipher.start({
    iv: toBinary(parts.iv),
    additionalData: toBinary(parts.aad),
    tagLength: TAG_BYTES * 8,
    tag: forge.util.createBuffer(toBinary(parts.tag)),
  });
  decipher.update(forge.util.createBuffer(toBinary(parts.ciphertext)));
  if (!decipher.finish()) authenticationFailed();
  return fromBinary(decipher.output.getBytes());
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}
