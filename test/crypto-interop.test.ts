/**
 * node-forge (src/crypto/forge.ts, the browser fallback) against node:crypto (src/crypto/*):
 * same key encodings and fingerprints, PEMs each reads from the other, signatures and envelopes
 * that cross in both directions, and the same refusals with the same codes.
 * Keys come from node:crypto (fast); one 2048-bit key comes from forge's pure-JS generator.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  constants,
  createPublicKey,
  generateKeyPairSync,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
  sign,
} from 'node:crypto';
import * as forgeCrypto from '../src/crypto/forge.js';
import * as keys from '../src/crypto/keys.js';
import { PSS_SALT_BYTES, signPss, verifyPss } from '../src/crypto/signature.js';
import { ENVELOPE_VERSION, openEnvelope, sealEnvelope, splitEnvelope } from '../src/crypto/envelope.js';
import { sha256 } from '../src/crypto/hash.js';
import { isP2pdbError, type ErrorCode } from '../src/errors.js';

function throwsCode(fn: () => unknown, code: ErrorCode, what: string): void {
  assert.throws(fn, (e: unknown) => isP2pdbError(e) && e.code === code, `${what}: expected ${code}`);
}

async function rejectsCode(p: Promise<unknown>, code: ErrorCode, what: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => isP2pdbError(e) && e.code === code, `${what}: expected ${code}`);
}

const buf = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

function flip(b: Uint8Array, index: number): Buffer {
  const out = Buffer.from(b);
  out[index] = out[index]! ^ 0x01;
  return out;
}

interface Pair {
  label: string;
  privatePem: string;
  publicPem: string;
}

const pairs: Pair[] = [];

before(async () => {
  const made = await Promise.all(
    [2048, 3072, 4096].map(async (bits) => ({ bits, pem: await keys.generateRsaKeyPair(bits) })),
  );
  for (const { bits, pem } of made) pairs.push({ label: `node:crypto ${bits}`, privatePem: pem.privateKey, publicPem: pem.publicKey });
  // Pure JS as in a browser without WebCrypto: about 1–3 s for 2048 bits.
  const forged = await forgeCrypto.generateRsaKeyPair(2048, { pureJavaScript: true });
  pairs.push({ label: 'forge pure-JS 2048', privatePem: forged.privateKey, publicPem: forged.publicKey });
});

test('forge.ts repeats the node modules\' constants exactly', () => {
  assert.equal(forgeCrypto.MIN_RSA_BITS, keys.MIN_RSA_BITS);
  assert.equal(forgeCrypto.MAX_RSA_BITS, keys.MAX_RSA_BITS);
  assert.equal(forgeCrypto.PSS_SALT_BYTES, PSS_SALT_BYTES);
  assert.equal(forgeCrypto.ENVELOPE_VERSION, ENVELOPE_VERSION);
});

test('byte helpers round-trip every byte value and large inputs', () => {
  const all = Uint8Array.from({ length: 256 }, (_, i) => i);
  assert.deepEqual(forgeCrypto.fromBinary(forgeCrypto.toBinary(all)), all);
  const big = randomBytes(200_000);
  assert.ok(buf(forgeCrypto.fromBinary(forgeCrypto.toBinary(big))).equals(big));
  assert.ok(buf(forgeCrypto.sha256(big)).equals(sha256(big)));
});

describe('keys: same SPKI DER, fingerprint and PEM on both sides', () => {
  test('each key pair', () => {
    assert.equal(pairs.length, 4);
    for (const p of pairs) {
      const n = keys.parsePrivateKey(p.privatePem);
      const f = forgeCrypto.parsePrivateKey(p.privatePem);
      assert.ok(buf(f.publicKey.spki).equals(n.publicKey.spki), `${p.label}: SPKI DER`);
      assert.ok(buf(f.publicKey.fingerprint).equals(n.publicKey.fingerprint), `${p.label}: fingerprint`);
      assert.equal(f.publicKey.bits, n.publicKey.bits, `${p.label}: bits`);

      // PEM text identical in both directions (forge's CRLF normalised to LF).
      assert.equal(forgeCrypto.exportPrivatePem(f.key), keys.exportPrivatePem(n.key), `${p.label}: PKCS#8 PEM`);
      assert.equal(forgeCrypto.exportPublicPem(f.publicKey.key), keys.exportPublicPem(n.publicKey.key), `${p.label}: SPKI PEM`);
      assert.equal(forgeCrypto.exportPrivatePem(f.key), p.privatePem, `${p.label}: PEM as generated`);

      // Each reads what the other wrote.
      const nFromForge = keys.parsePrivateKey(forgeCrypto.exportPrivatePem(f.key));
      assert.ok(nFromForge.publicKey.spki.equals(n.publicKey.spki));
      const fFromNode = forgeCrypto.parsePrivateKey(keys.exportPrivatePem(n.key));
      assert.ok(buf(fFromNode.publicKey.spki).equals(n.publicKey.spki));

      // Every public input form lands on the same canonical SPKI.
      const pkcs1Pem = createPublicKey(p.publicPem).export({ type: 'pkcs1', format: 'pem' }).toString();
      for (const input of [p.publicPem, p.privatePem, pkcs1Pem, n.publicKey.spki] as const) {
        assert.ok(buf(forgeCrypto.parsePublicKey(input).spki).equals(n.publicKey.spki), `${p.label}: forge parsePublicKey`);
        assert.ok(keys.parsePublicKey(input).spki.equals(n.publicKey.spki), `${p.label}: node parsePublicKey`);
      }
      assert.ok(buf(forgeCrypto.parseWireSpki(n.publicKey.spki).fingerprint).equals(n.publicKey.fingerprint));
    }
  });

  test('PKCS#1 private key PEM is read by both', () => {
    const p = pairs[0]!;
    const n = keys.parsePrivateKey(p.privatePem);
    const pkcs1 = n.key.export({ type: 'pkcs1', format: 'pem' }).toString();
    assert.ok(buf(forgeCrypto.parsePrivateKey(pkcs1).publicKey.spki).equals(n.publicKey.spki));
    // Exported back as PKCS#8, the same text node:crypto writes.
    assert.equal(forgeCrypto.exportPrivatePem(forgeCrypto.parsePrivateKey(pkcs1).key), p.privatePem);
  });
});

describe('PSS signatures cross in both directions', () => {
  test('each key pair, several message sizes', () => {
    for (const p of pairs) {
      const n = keys.parsePrivateKey(p.privatePem);
      const f = forgeCrypto.parsePrivateKey(p.privatePem);
      for (const message of [randomBytes(32), Buffer.alloc(0), randomBytes(10_000)]) {
        const byNode = signPss(n.key, message);
        const byForge = forgeCrypto.signPss(f.key, message);
        assert.equal(byForge.length, n.publicKey.bits / 8);
        assert.ok(forgeCrypto.verifyPss(f.publicKey.key, message, byNode), `${p.label}: forge verifies node`);
        assert.ok(verifyPss(n.publicKey.key, message, byForge), `${p.label}: node verifies forge`);
        assert.ok(forgeCrypto.verifyPss(f.publicKey.key, message, byForge));
      }
    }
  });

  test('refused on both sides: other message, flipped bit, wrong length, other key', () => {
    const [a, b] = pairs as [Pair, Pair];
    const n = keys.parsePrivateKey(a.privatePem);
    const f = forgeCrypto.parsePrivateKey(a.privatePem);
    const other = forgeCrypto.parsePrivateKey(b.privatePem);
    const message = randomBytes(32);
    const sig = signPss(n.key, message);
    const cases: [string, Uint8Array, Uint8Array][] = [
      ['other message', flip(message, 0), sig],
      ['flipped first byte', message, flip(sig, 0)],
      ['flipped last byte', message, flip(sig, sig.length - 1)],
      ['truncated', message, sig.subarray(1)],
      ['empty', message, new Uint8Array(0)],
    ];
    for (const [what, m, s] of cases) {
      assert.equal(forgeCrypto.verifyPss(f.publicKey.key, m, s), false, `forge: ${what}`);
      assert.equal(verifyPss(n.publicKey.key, m, s), false, `node: ${what}`);
    }
    assert.equal(forgeCrypto.verifyPss(other.publicKey.key, message, sig), false, 'forge: other key');
  });

  test('salt length is 32, not node:crypto\'s default maximum', () => {
    const n = keys.parsePrivateKey(pairs[0]!.privatePem);
    const f = forgeCrypto.parsePrivateKey(pairs[0]!.privatePem);
    const message = randomBytes(32);
    // What node:crypto does when the salt length is left out: maximum salt (222 bytes for 2048/SHA-256).
    const maxSalt = sign('sha256', message, { key: n.key, padding: constants.RSA_PKCS1_PSS_PADDING });
    assert.equal(forgeCrypto.verifyPss(f.publicKey.key, message, maxSalt), false, 'forge refuses max-salt');
    assert.equal(verifyPss(n.publicKey.key, message, maxSalt), false, 'our node verifier refuses max-salt');
    // signature.ts states salt 32, so a forge verifier that expects 32 accepts it.
    assert.ok(forgeCrypto.verifyPss(f.publicKey.key, message, signPss(n.key, message)));
  });
});

describe('envelopes cross in both directions', () => {
  const plaintexts = [Buffer.alloc(0), Buffer.from('hello, recipient'), randomBytes(65_536)];

  test('each key pair', () => {
    for (const p of pairs) {
      const n = keys.parsePrivateKey(p.privatePem);
      const f = forgeCrypto.parsePrivateKey(p.privatePem);
      for (const plaintext of plaintexts) {
        const byForge = forgeCrypto.sealEnvelope(f.publicKey.key, plaintext);
        const byNode = sealEnvelope(n.publicKey.key, plaintext);
        assert.ok(openEnvelope(n.key, byForge).equals(plaintext), `${p.label}: node opens forge`);
        assert.ok(buf(forgeCrypto.openEnvelope(f.key, byNode)).equals(plaintext), `${p.label}: forge opens node`);
        // Same layout: header, wrapped key of modulus size, 12-byte IV, ciphertext, 16-byte tag.
        for (const env of [byForge, byNode]) {
          const np = splitEnvelope(env);
          const fp = forgeCrypto.splitEnvelope(env);
          assert.equal(env[0], ENVELOPE_VERSION);
          assert.equal(np.wrappedKey.length, n.publicKey.bits / 8);
          assert.equal(env.length, 3 + n.publicKey.bits / 8 + 12 + plaintext.length + 16);
          for (const k of ['aad', 'wrappedKey', 'iv', 'ciphertext', 'tag'] as const) {
            assert.ok(buf(fp[k]).equals(np[k]), `${p.label}: ${k}`);
          }
        }
      }
    }
  });

  test('tampering and wrong keys are refused with decrypt_failed by both', () => {
    const n = keys.parsePrivateKey(pairs[0]!.privatePem);
    const f = forgeCrypto.parsePrivateKey(pairs[0]!.privatePem);
    const wrongN = keys.parsePrivateKey(pairs[3]!.privatePem);
    const wrongF = forgeCrypto.parsePrivateKey(pairs[3]!.privatePem);
    const plaintext = Buffer.from('for the right reader only');
    for (const [sealer, env] of [
      ['node', sealEnvelope(n.publicKey.key, plaintext)],
      ['forge', buf(forgeCrypto.sealEnvelope(f.publicKey.key, plaintext))],
    ] as const) {
      const parts = splitEnvelope(env);
      const ivAt = 3 + parts.wrappedKey.length;
      const cases: [string, Uint8Array][] = [
        ['version', flip(env, 0)],
        ['wrapped-key length', flip(env, 2)],
        ['wrapped key', flip(env, 3 + 10)],
        ['iv', flip(env, ivAt)],
        ['ciphertext', flip(env, ivAt + 12)],
        ['tag', flip(env, env.length - 1)],
        ['truncated', env.subarray(0, env.length - 1)],
        ['cut to the header', env.subarray(0, ivAt + 27)],
      ];
      for (const [what, bad] of cases) {
        throwsCode(() => openEnvelope(n.key, bad), 'decrypt_failed', `node, ${sealer}-sealed, ${what}`);
        throwsCode(() => forgeCrypto.openEnvelope(f.key, bad), 'decrypt_failed', `forge, ${sealer}-sealed, ${what}`);
      }
      throwsCode(() => openEnvelope(wrongN.key, env), 'decrypt_failed', `node, ${sealer}-sealed, wrong key`);
      throwsCode(() => forgeCrypto.openEnvelope(wrongF.key, env), 'decrypt_failed', `forge, ${sealer}-sealed, wrong key`);
    }
  });

  test('OAEP is SHA-256 on both sides: a SHA-1 (default) wrap is refused', () => {
    const n = keys.parsePrivateKey(pairs[0]!.privatePem);
    const f = forgeCrypto.parsePrivateKey(pairs[0]!.privatePem);
    const env = Buffer.from(forgeCrypto.sealEnvelope(f.publicKey.key, Buffer.from('x')));
    const parts = splitEnvelope(env);
    // node:crypto unwraps forge's key only when told SHA-256.
    const aesKey = privateDecrypt({ key: n.key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, parts.wrappedKey);
    assert.equal(aesKey.length, 32);
    assert.throws(() => privateDecrypt({ key: n.key, padding: constants.RSA_PKCS1_OAEP_PADDING }, parts.wrappedKey));
    // The same AES key wrapped with node's default OAEP hash (SHA-1) is refused by forge.
    const sha1Wrapped = publicEncrypt({ key: n.publicKey.key, padding: constants.RSA_PKCS1_OAEP_PADDING }, aesKey);
    const swapped = Buffer.concat([env.subarray(0, 3), sha1Wrapped, env.subarray(3 + parts.wrappedKey.length)]);
    throwsCode(() => forgeCrypto.openEnvelope(f.key, swapped), 'decrypt_failed', 'forge, SHA-1 OAEP');
    throwsCode(() => openEnvelope(n.key, swapped), 'decrypt_failed', 'node, SHA-1 OAEP');
  });
});

describe('key policy: both sides refuse the same keys with the same codes', () => {
  const pemOf = (bits: number, publicExponent = 65537) =>
    generateKeyPairSync('rsa', {
      modulusLength: bits,
      publicExponent,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });

  function refusedBoth(pair: { publicKey: string; privateKey: string }, code: ErrorCode, what: string): void {
    const der = createPublicKey(pair.publicKey).export({ type: 'spki', format: 'der' });
    for (const input of [pair.publicKey, der] as const) {
      throwsCode(() => forgeCrypto.parsePublicKey(input), code, `forge parsePublicKey, ${what}`);
      throwsCode(() => keys.parsePublicKey(input), code, `node parsePublicKey, ${what}`);
    }
    throwsCode(() => forgeCrypto.parseWireSpki(der), code, `forge parseWireSpki, ${what}`);
    throwsCode(() => forgeCrypto.parsePrivateKey(pair.privateKey), code, `forge parsePrivateKey, ${what}`);
    throwsCode(() => keys.parsePrivateKey(pair.privateKey), code, `node parsePrivateKey, ${what}`);
  }

  test('1024 bits: key_size', () => refusedBoth(pemOf(1024), 'key_size', '1024 bits'));
  test('exponent 3: bad_key', () => refusedBoth(pemOf(2048, 3), 'bad_key', 'e = 3'));

  test('not RSA: bad_key', () => {
    const ec = generateKeyPairSync('ec', {
      namedCurve: 'P-256',
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
    refusedBoth(ec, 'bad_key', 'EC P-256');
  });

  test('unreadable and non-SPKI input: bad_key', () => {
    const pub = createPublicKey(pairs[0]!.publicPem);
    const pkcs1Der = pub.export({ type: 'pkcs1', format: 'der' });
    for (const input of ['not a key', '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n', new Uint8Array([0x30, 0x00]), pkcs1Der] as const) {
      throwsCode(() => forgeCrypto.parsePublicKey(input), 'bad_key', `forge: ${String(input).slice(0, 20)}`);
      throwsCode(() => keys.parsePublicKey(input), 'bad_key', `node: ${String(input).slice(0, 20)}`);
    }
    throwsCode(() => forgeCrypto.parsePrivateKey(pairs[0]!.publicPem), 'bad_key', 'forge: public PEM as private');
  });

  test('readable but non-canonical SPKI: both read it, both refuse it on the wire', () => {
    const der = createPublicKey(pairs[0]!.publicPem).export({ type: 'spki', format: 'der' });
    // Two encodings that both libraries read leniently: AlgorithmIdentifier without its NULL
    // parameters, and the outer length in a needlessly long form.
    const alg = Buffer.concat([Buffer.from('300b0609', 'hex'), der.subarray(8, 17)]);
    const body = Buffer.concat([alg, der.subarray(19)]);
    const noNull = Buffer.concat([Buffer.from([0x30, 0x82, body.length >> 8, body.length & 0xff]), body]);
    const longLength = Buffer.concat([Buffer.from([0x30, 0x83, 0x00, der[2]!, der[3]!]), der.subarray(4)]);
    for (const nc of [noNull, longLength]) {
      assert.ok(buf(forgeCrypto.parsePublicKey(nc).spki).equals(der));
      assert.ok(keys.parsePublicKey(nc).spki.equals(der));
      throwsCode(() => forgeCrypto.parseWireSpki(nc), 'bad_key', 'forge parseWireSpki');
      throwsCode(() => keys.parseWireSpki(nc), 'bad_key', 'node parseWireSpki');
    }
  });

  test('forge key generation keeps the size policy', async () => {
    await rejectsCode(forgeCrypto.generateRsaKeyPair(1024), 'key_size', 'forge generate 1024');
    await rejectsCode(forgeCrypto.generateRsaKeyPair(8192), 'key_size', 'forge generate 8192');
  });
});

test('forge refuses to make keys without crypto.getRandomValues (it would fall back to Math.random)', async () => {
  const saved = Object.getOwnPropertyDescriptor(globalThis, 'crypto');
  assert.ok(saved?.configurable);
  const f = forgeCrypto.parsePrivateKey(pairs[0]!.privatePem);
  Object.defineProperty(globalThis, 'crypto', { value: undefined, configurable: true });
  try {
    throwsCode(() => forgeCrypto.sealEnvelope(f.publicKey.key, Buffer.from('x')), 'internal', 'seal without getRandomValues');
    await rejectsCode(forgeCrypto.generateRsaKeyPair(2048), 'internal', 'keygen without getRandomValues');
  } finally {
    Object.defineProperty(globalThis, 'crypto', saved);
  }
  assert.ok(forgeCrypto.sealEnvelope(f.publicKey.key, Buffer.from('x')).length > 0);
});
