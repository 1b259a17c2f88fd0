/** Pairing links (docs/PROTOCOL.md §12): the published vector, round trips, and refusals. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { decodePairingFragment, encodePairingFragment, isPairingFragment, pairingLink } from '../src/client/pairing.js';
import { fromBase64, fromBase64Url, toBase64, toBase64Url } from '../src/client/base64url.js';
import { isP2pdbError } from '../src/errors.js';

const doc = readFileSync(new URL('../../docs/PROTOCOL.md', import.meta.url), 'utf8');

function block(name: string): Record<string, unknown> {
  const m = [...doc.matchAll(new RegExp('^```json ' + name + '[ \\t]*\\r?\\n([\\s\\S]*?)^```[ \\t]*$', 'gm'))];
  assert.equal(m.length, 1, `exactly one ${name} block in docs/PROTOCOL.md`);
  return JSON.parse(m[0]![1]!) as Record<string, unknown>;
}

const vectors = block('vectors') as { keys: Record<'table' | 'recipient', { private_pkcs8_pem: string }> };
const pairing = block('pairing-vectors') as { fragment: string; label: string; table_fingerprint_hex: string; recipient_fingerprint_hex: string };
const jwkOf = (pem: string) => createPrivateKey(pem).export({ format: 'jwk' });
const fingerprint = (jwk: object) =>
  createHash('sha256').update(createPublicKey({ key: jwk as never, format: 'jwk' }).export({ type: 'spki', format: 'der' })).digest('hex');
const RSA_FIELDS = ['kty', 'n', 'e', 'd', 'p', 'q', 'dp', 'dq', 'qi'] as const;
const pick = (jwk: Record<string, unknown>) => Object.fromEntries(RSA_FIELDS.map((k) => [k, jwk[k]]));

function assertBadRequest(fn: () => unknown, what: string): void {
  assert.throws(fn, (e) => isP2pdbError(e) && e.code === 'bad_request', what);
}

test('the published pairing vector encodes and decodes exactly', () => {
  const table = jwkOf(vectors.keys.table.private_pkcs8_pem);
  const recipient = jwkOf(vectors.keys.recipient.private_pkcs8_pem);
  assert.equal(encodePairingFragment({ table, recipient, label: pairing.label }), pairing.fragment);
  const decoded = decodePairingFragment('#' + pairing.fragment);
  assert.deepEqual(pick(decoded.table as never), pick(table as never));
  assert.deepEqual(pick(decoded.recipient as never), pick(recipient as never));
  assert.equal(decoded.label, pairing.label);
  assert.equal(fingerprint(decoded.table), pairing.table_fingerprint_hex);
  assert.equal(fingerprint(decoded.recipient!), pairing.recipient_fingerprint_hex);
});

test('fresh keys of 2048, 3072 and 4096 bits survive the round trip and fit a QR code at 2048', () => {
  for (const bits of [2048, 3072, 4096]) {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: bits });
    const jwk = privateKey.export({ format: 'jwk' });
    const fragment = encodePairingFragment({ table: jwk, recipient: jwk });
    assert.deepEqual(pick(decodePairingFragment(fragment).table as never), pick(jwk as never));
    if (bits === 2048) assert.ok(fragment.length < 800, `fragment is ${fragment.length} characters`);
  }
  const link = pairingLink('http://abc.onion/', { table: jwkOf(vectors.keys.table.private_pkcs8_pem) });
  assert.match(link, /^http:\/\/abc\.onion\/#pair=1&t=[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
  assert.ok(isPairingFragment(new URL(link).hash));
});

test('garbage, wrong versions, corrupted primes and small keys are refused with bad_request', () => {
  const good = pairing.fragment;
  const t = /t=([^&]+)/.exec(good)![1]!;
  const [p, q] = t.split('.') as [string, string];
  const flipped = p.slice(0, 10) + (p[10] === 'A' ? 'B' : 'A') + p.slice(11);
  for (const [fragment, what] of [
    ['', 'empty'],
    ['pair=2&t=' + t, 'version 2'],
    ['pair=1', 'no table'],
    ['pair=1&t=' + p, 'one prime'],
    ['pair=1&t=' + flipped + '.' + q, 'corrupted prime'],
    ['pair=1&t=' + t + '&t=' + t, 'duplicate field'],
    ['pair=1&t=' + p + '=.' + q, 'padding'],
    ['pair=1&t=AA' + p + '.' + q, 'not canonical'],
    ['pair=1&t=' + t + '&l=%E2%28', 'bad label encoding'],
    ['pair=1&t=' + toBase64Url(new Uint8Array([0x0b])) + '.' + toBase64Url(new Uint8Array([0x0d])), 'tiny key'],
  ] as const) {
    assertBadRequest(() => decodePairingFragment(fragment), what);
  }
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const small = privateKey.export({ format: 'jwk' });
  assertBadRequest(() => decodePairingFragment(encodePairingFragment({ table: small })), '1024-bit key');
});

test('base64 codecs agree with Buffer and refuse what does not round-trip', () => {
  for (let n = 0; n < 70; n++) {
    const bytes = new Uint8Array(n).map((_, i) => (i * 37 + n) & 0xff);
    assert.equal(toBase64(bytes), Buffer.from(bytes).toString('base64'));
    assert.equal(toBase64Url(bytes), Buffer.from(bytes).toString('base64url'));
    assert.deepEqual(fromBase64(toBase64(bytes)), bytes);
    assert.deepEqual(fromBase64Url(toBase64Url(bytes)), bytes);
  }
  for (const bad of ['QQ', 'QR==', 'Q===', 'QQ=A', 'QQ= =', '-_==']) assert.throws(() => fromBase64(bad), bad);
  for (const bad of ['QR', 'Q', 'Q+', 'QQ==']) assert.throws(() => fromBase64Url(bad), bad);
});
