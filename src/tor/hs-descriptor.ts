/**
 * Reads a v3 onion-service descriptor the way a client does (rend-spec-v3 §2.5): both encrypted
 * layers are opened with keys derived from the onion address alone (no client authorization),
 * each layer's MAC is checked, and the inner layer's lines are returned. p2pdb uses it to show
 * that what tor *publishes* carries the DoS defences it was asked for (the `pow-params` line),
 * not merely that ADD_ONION accepted the keywords.
 *
 * Input is the encoded descriptor as tor hands it out: `GETINFO hs/service/desc/id/<id>` (the
 * service's own copy) or `GETINFO hs/client/desc/id/<id>` after HSFETCH (the copy a client got
 * from the HSDirs). Both are the same signed document; only the inner layers say anything.
 */
import { createDecipheriv, createHash, timingSafeEqual } from 'node:crypto';
import { fail } from '../errors.js';
import { publicKeyOfOnion } from '../identity/onion-key.js';

export interface PowParams {
  /** "v1" (Equi-X, proposal 327). */
  type: string;
  seedBase64: string;
  /** The effort the service currently suggests; 0 while it is not under attack. */
  suggestedEffort: number;
  /** When the seed expires (ISO 8601 from the descriptor, UTC). */
  expires: string;
}

export interface DecodedDescriptor {
  revisionCounter: bigint;
  /** The blinded public key of the current period (from the signing-key certificate). */
  blindedKey: Buffer;
  /** Every line of the innermost (second) layer, e.g. `create2-formats 2`, `introduction-point …`. */
  innerLines: string[];
  /** The `pow-params` line, when the service has the proof-of-work defence on. */
  pow?: PowParams;
  introductionPoints: number;
}

const SALT_LEN = 16;
const MAC_LEN = 32;

/** Decodes `descriptor` of the onion `address` ("<56>.onion" or the bare service id). */
export function decodeDescriptor(descriptor: string, address: string): DecodedDescriptor {
  const onion = address.endsWith('.onion') ? address : `${address}.onion`;
  const identityKey = publicKeyOfOnion(onion);
  const text = descriptor.replace(/\r\n/g, '\n');
  if (!text.startsWith('hs-descriptor 3\n')) fail('malformed', 'not a v3 onion-service descriptor');
  const cert = armored(text, 'ED25519 CERT', 'descriptor-signing-key-cert');
  const blindedKey = signingKeyOfCert(cert);
  const revision = /^revision-counter (\d+)$/m.exec(text)?.[1];
  if (revision === undefined) fail('malformed', 'descriptor without revision-counter');
  const revisionCounter = BigInt(revision);
  const credential = sha3(Buffer.from('credential'), identityKey);
  const subcredential = sha3(Buffer.from('subcredential'), credential, blindedKey);

  const outer = openLayer(armored(text, 'MESSAGE', 'superencrypted'), blindedKey, subcredential, revisionCounter, 'hsdir-superencrypted-data');
  // Without client authorization the inner layer's secret is the blinded key alone.
  const inner = openLayer(armored(outer, 'MESSAGE', 'encrypted'), blindedKey, subcredential, revisionCounter, 'hsdir-encrypted-data');
  const innerLines = inner.split('\n').filter((l) => l !== '');
  const powLine = innerLines.find((l) => l.startsWith('pow-params '));
  const out: DecodedDescriptor = {
    revisionCounter,
    blindedKey,
    innerLines,
    introductionPoints: innerLines.filter((l) => l.startsWith('introduction-point ')).length,
  };
  if (powLine !== undefined) {
    const [, type, seedBase64, effort, expires] = powLine.split(' ');
    if (!type || !seedBase64 || effort === undefined || !/^\d+$/.test(effort) || !expires) fail('malformed', `bad pow-params line: ${powLine}`);
    out.pow = { type, seedBase64, suggestedEffort: Number(effort), expires };
  }
  return out;
}

/** The base64 body of the armored object right after the line `keyword`. */
function armored(text: string, kind: string, keyword: string): Buffer {
  const re = new RegExp(`^${keyword}\\n-----BEGIN ${kind}-----\\n([A-Za-z0-9+/=\\n]+?)-----END ${kind}-----$`, 'm');
  const m = re.exec(text);
  if (!m) fail('malformed', `descriptor without ${keyword}`);
  return Buffer.from(m[1]!.replace(/\n/g, ''), 'base64');
}

/** cert-spec: the signed-with-ed25519-key extension (type 4) holds the key that signed the cert: the blinded key. */
function signingKeyOfCert(cert: Buffer): Buffer {
  if (cert.length < 40 || cert[0] !== 1) fail('malformed', 'bad descriptor signing-key certificate');
  const extensions = cert[39]!;
  let at = 40;
  for (let i = 0; i < extensions; i++) {
    if (at + 4 > cert.length) break;
    const len = cert.readUInt16BE(at);
    const type = cert[at + 2];
    if (type === 4 && len === 32) return cert.subarray(at + 4, at + 4 + 32);
    at += 4 + len;
  }
  fail('malformed', 'descriptor certificate names no signing (blinded) key');
}

function openLayer(blob: Buffer, secretData: Buffer, subcredential: Buffer, revision: bigint, constant: string): string {
  if (blob.length < SALT_LEN + MAC_LEN) fail('malformed', `encrypted ${constant} layer too short`);
  const salt = blob.subarray(0, SALT_LEN);
  const encrypted = blob.subarray(SALT_LEN, blob.length - MAC_LEN);
  const mac = blob.subarray(blob.length - MAC_LEN);
  const rev = Buffer.alloc(8);
  rev.writeBigUInt64BE(revision);
  const keys = createHash('shake256', { outputLength: 32 + 16 + 32 })
    .update(Buffer.concat([secretData, subcredential, rev, salt, Buffer.from(constant)]))
    .digest();
  const [key, iv, macKey] = [keys.subarray(0, 32), keys.subarray(32, 48), keys.subarray(48, 80)];
  const expected = sha3(u64(macKey.length), macKey, u64(salt.length), salt, encrypted);
  if (!timingSafeEqual(expected, mac)) fail('malformed', `the ${constant} layer's MAC does not match this onion address`);
  const decipher = createDecipheriv('aes-256-ctr', key, iv);
  const plain = Buffer.concat([decipher.update(encrypted), decipher.final()]);
  // The plaintext is padded with NULs to a multiple of 10 KiB.
  return plain.toString('utf8').replace(/\0+$/, '');
}

function sha3(...parts: Buffer[]): Buffer {
  const h = createHash('sha3-256');
  for (const p of parts) h.update(p);
  return h.digest();
}

function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}
