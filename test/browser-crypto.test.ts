/**
 * The browser client's crypto backends (src/client/browser-crypto.ts) and entry code, run in Node
 * (which has WebCrypto too) against node:crypto and the node's own checks: both backends must
 * make entries a node accepts and open what the Node client seals. The chromium tests
 * (browser.test.ts) run the same code in a real page.
 */
import assert from 'node:assert/strict';
import { createPrivateKey, pbkdf2Sync } from 'node:crypto';
import { describe, test } from 'node:test';
import { selectBackend, pkcs8FromJwk, pkcs8FromPem, jwkFromPkcs8, spkiFromPem, type BackendKind } from '../src/client/browser-crypto.js';
import { buildEntry, checkStoredEntry } from '../src/client/browser-entry.js';
import { mintWithProgress, pickKernel } from '../src/client/browser-mint.js';
import { decodePairingFragment, encodePairingFragment } from '../src/client/pairing.js';
import { openEntry, verifyStoredEntry } from '../src/client/read.js';
import { sealEnvelope, openEnvelope } from '../src/crypto/envelope.js';
import { parsePublicKey } from '../src/crypto/keys.js';
import { verifyPss } from '../src/crypto/signature.js';
import { proofValue } from '../src/pow/cluster.js';
import { isP2pdbError } from '../src/errors.js';
import { makeEntry, testKey } from './helpers/entries.js';

const table = testKey();
const reader = testKey();
const code = (c: string) => (e: unknown) => isP2pdbError(e) && e.code === c;

for (const kind of ['webcrypto', 'forge'] as BackendKind[]) {
  describe(`browser crypto backend: ${kind}`, () => {
    const backend = selectBackend(kind);

    test('keys, signatures and envelopes interoperate with node:crypto', async () => {
      assert.equal(backend.kind, kind);
      const key = await backend.privateKey(pkcs8FromPem(table.privatePem));
      assert.deepEqual(Buffer.from(key.publicKey.spki), parsePublicKey(table.publicPem).spki);
      assert.deepEqual(Buffer.from(key.publicKey.fingerprint), parsePublicKey(table.publicPem).fingerprint);
      const message = new Uint8Array(32).fill(7);
      const sig = await key.sign(message);
      assert.ok(verifyPss(table.publicKey, message, sig), 'node:crypto verifies the PSS signature (salt 32)');
      const pub = await backend.publicKey(spkiFromPem(reader.publicPem));
      const sealed = await pub.seal(new TextEncoder().encode('to node'));
      assert.equal(openEnvelope(reader.privateKey, sealed).toString(), 'to node');
      const readerKey = await backend.privateKey(pkcs8FromPem(reader.privatePem));
      assert.equal(new TextDecoder().decode(await readerKey.open(sealEnvelope(reader.publicKey, Buffer.from('from node')))), 'from node');
      await assert.rejects(key.open(sealEnvelope(reader.publicKey, Buffer.from('x'))), code('decrypt_failed'), 'not addressed to this key');
      const tampered = sealEnvelope(reader.publicKey, Buffer.from('y'));
      tampered[tampered.length - 1]! ^= 1;
      await assert.rejects(readerKey.open(tampered), code('decrypt_failed'), 'tampered ciphertext');
    });

    test('PBKDF2 and AES-GCM match node:crypto', async () => {
      const salt = new Uint8Array(16).fill(3);
      const derived = await backend.pbkdf2('pass phrase ✓', salt, 1000);
      assert.deepEqual(Buffer.from(derived), pbkdf2Sync(Buffer.from('pass phrase ✓', 'utf8'), salt, 1000, 32, 'sha256'));
      const iv = new Uint8Array(12).fill(1);
      const other = selectBackend(kind === 'forge' ? 'webcrypto' : 'forge');
      const sealed = await backend.aesGcmEncrypt(derived, iv, new TextEncoder().encode('secret'), new Uint8Array([1, 2]));
      assert.equal(new TextDecoder().decode(await other.aesGcmDecrypt(derived, iv, sealed, new Uint8Array([1, 2]))), 'secret');
      await assert.rejects(other.aesGcmDecrypt(derived, iv, sealed, new Uint8Array([1, 3])), code('decrypt_failed'), 'other AAD');
    });

    test('an entry built here passes the node-side checks and opens with node:crypto; tampering is caught', async () => {
      const key = await backend.privateKey(pkcs8FromPem(table.privatePem));
      const to = await backend.publicKey(spkiFromPem(reader.publicPem));
      const entry = await buildEntry({
        backend, table: key, recipient: to, plaintext: new TextEncoder().encode('built in the browser code'), powBits: 12,
        mint: async (id, bits) => mintWithProgress(pickKernel('auto'), id, bits),
      });
      const stored = { ...entry, seq: '1', received_at: Date.now() };
      const checked = verifyStoredEntry(stored, { minPowBits: 12 });
      assert.equal(openEntry(checked.entry, reader.privateKey).toString(), 'built in the browser code');
      assert.equal((await checkStoredEntry(backend, stored)).idHex, entry.id);
      await assert.rejects(checkStoredEntry(backend, { ...stored, created_at: stored.created_at + 1 }), code('id_mismatch'));
      const sig = Buffer.from(stored.signature, 'base64');
      sig[0]! ^= 1;
      await assert.rejects(checkStoredEntry(backend, { ...stored, signature: sig.toString('base64') }), code('bad_signature'));
      // And what the Node client writes, this code reads.
      const made = await makeEntry({ table, to: reader, text: 'from the Node client' });
      const fromNode = await checkStoredEntry(backend, { ...made.json, id: made.idHex, seq: '2', received_at: 0 });
      const readerKey = await backend.privateKey(pkcs8FromPem(reader.privatePem));
      assert.equal(new TextDecoder().decode(await readerKey.open(fromNode.payload)), 'from the Node client');
    });
  });
}

test('both proof-of-work kernels mint proofs worth the bits asked for, with progress', () => {
  const id = new Uint8Array(32).fill(9);
  for (const kind of ['wasm', 'js'] as const) {
    const kernel = pickKernel(kind);
    assert.equal(kernel.kind, kind);
    const seen: number[] = [];
    const proof = mintWithProgress(kernel, id, 14, (p) => seen.push(p.fraction));
    assert.ok(proofValue(id, proof) >= 14, `${kind}: proof worth ${proofValue(id, proof)}`);
    assert.equal(seen.at(-1), 1);
    assert.ok(seen.every((f, i) => i === 0 || f >= seen[i - 1]!), 'progress never goes back');
  }
});

test('pairing JWKs and PKCS#8 convert both ways without loss', () => {
  const jwk = table.privateKey.export({ format: 'jwk' });
  const decoded = decodePairingFragment(encodePairingFragment({ table: jwk }));
  const der = pkcs8FromJwk(decoded.table as unknown as Record<string, unknown>);
  assert.deepEqual(Buffer.from(der), table.privateKey.export({ type: 'pkcs8', format: 'der' }));
  assert.deepEqual(jwkFromPkcs8(der), { kty: 'RSA', n: jwk.n, e: jwk.e, d: jwk.d, p: jwk.p, q: jwk.q, dp: jwk.dp, dq: jwk.dq, qi: jwk.qi });
  assert.equal(createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' }).asymmetricKeyDetails?.modulusLength, 2048);
  assert.throws(() => pkcs8FromPem(testKey(1024).privatePem), code('key_size'));
});
