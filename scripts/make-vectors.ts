/**
 * Prints the protocol test vectors (JSON) that docs/PROTOCOL.md §7 carries and
 * test/protocol-vectors.test.ts checks. Run: node dist/scripts/make-vectors.js > vectors.json
 *
 * Keys, entry, id and proof are deterministic (fixed keys below, nonces searched from 0);
 * signatures and envelopes are randomized, so those vectors say "verifies" / "opens to".
 * Every vector is checked here before it is printed, so a broken run prints nothing.
 */
import { constants, createHash, privateDecrypt } from 'node:crypto';
import assert from 'node:assert/strict';
import { parsePrivateKey, PublicKeyCache, type PublicKeyInfo } from '../src/crypto/keys.js';
import { PSS_SALT_BYTES, signPss, verifyPss } from '../src/crypto/signature.js';
import { openEnvelope, sealEnvelope, splitEnvelope } from '../src/crypto/envelope.js';
import { canonicalBytes, ENTRY_MAGIC, entryId, type EntryContent } from '../src/entry/canonical.js';
import { ENTRY_VERSION, type Entry, type EntryJson } from '../src/entry/types.js';
import { entryToJson } from '../src/entry/wire.js';
import { validateEntryJson, type EntryPolicy } from '../src/entry/validate.js';
import { isP2pdbError } from '../src/errors.js';
import {
  leadingZeroBits,
  NONCE_OFFSET,
  POW_NONCE_BYTES,
  POW_PROOF_BYTES,
  POW_TAG,
  POW_TOKENS,
  proofValue,
  tokenBitsFor,
  tokenInput,
} from '../src/pow/cluster.js';
import { toBase64, toHex } from '../src/util/bytes.js';

// Public test keys (RSA-2048, generated once with node:crypto). Never use them for anything else.
const TABLE_PRIVATE_PEM = [
  '-----BEGIN PRIVATE KEY-----',
  'MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQCtY69HM9apQ9Rg',
  'kRFizB8CfLWvXhv97sDxXDRURbpV7dwQn6pD4OJJ5mx1qOFh8AkDzpnR0qXZrzcu',
  'I6OOp45VcMJ3YoqRVsgX8LyFfbSJnFVFDqndbfZjEqq7HH7nP8w7XuBjBa1EWMSx',
  'V2Dlq+CbXt3wqMF4xIgzavkWcyKo2zMnYGNWV95c9Uu1iKGbPbO7rF2UU8wcWf/4',
  'Q8ogjO2jGoQVksTJPe/q55/yg1SYNoYcmnO1f7D3Xpcrdx84jEcsmsdv+EnIDwNB',
  '/coqfPGAa3L2aRi4MaPyPRwZJJqaZFqXEHdXi5A567AkGFyYTLAzIBc71Zhnf277',
  'pek5Sd+lAgMBAAECggEAQsjhq4BJD3tj4yodUzuiOhgE9x49k+qRgKXuNgOBiTWM',
  'DQ8iyvBk2OgbIJrC7TFCl6fNUadcYGN/0pLBneHmDfzXuppHG0Ic4jPEuXo4vsRr',
  'h6TlQrfnLjPzdQy9yJ6nMLsTnLCEE45JfLFWTkCMy+uXeunVU4oHmB59AOuqDvV0',
  'f6SMxUB+GGSnWb3TgRAzaW6aR++TI5yBPwCaSx++f1C0DF1MrydA7U216+5FkhEu',
  'QVS+fBpcllyr+VZJq1yhj4X7Fx7JBSff4+UARvZqWACMQKimjecSCxLyv/Hc0915',
  'VIoa7re/V3ohO0yzMJ5Nq4UXOU7gBp5XzqacfPy9JQKBgQDkn1B5CghVIB5EUSpM',
  'GlamS9c0PbiaKmVO7DObD13H6Fhc2BN9sd8WQdbbtF8cDVELojsfhLS9+6wgnbSz',
  'Eu/LFb+x60tCpUNDA/MQkCR6LhezNrSEbo+EFpX8NpyPSYA6u59YY5zJkPa/RcVJ',
  'mz/jkDhf09jAoodvz67NFxkN8wKBgQDCJyPb9cqhEjfU1ULT9USsXemhOYrYqxS9',
  'bLZosYelMk2yE129UMBWxP+n3EuIujVrhjzj9P2HD5oj+2+y4wzP2xtvcPZUI+7M',
  'm2pEANkbYqVS9a3VQhTtCbHqtE+McxMl87nmsKXJnnc9qkTum6L4fVqXSMV3n6oy',
  'lCTWD3UKBwKBgHBSLTEqUqmv2+7oiYVWM1gETril0jo7tgYuWbRGumZqqm8C4aCR',
  'cO74bd0HIusfR8AVdkKn6jyklw53LL4GAbWe+80nspQNqZwVJqfuiV1Vo+Myb0HZ',
  'J71Xc1y0X/qtu8gfQcwlNHR7Oh8C4kilc6ATzP6XkBgkQbIXMOQmAvMtAoGAAM/N',
  'FJRYfofm99rUZrJ10QqreWMWM4Wzln8n3BQx7vzg2ke+cpYt168HKpp/Llko9AQh',
  'qQpTLQdhq5jXhLXyTcQqvzKHtR5ZVz2nGhWu0rB85HXmfifCkqMhvUt3sayhfd0g',
  '/9fpOYiSEw3tL9oyujs777n8KV3fhkqcRNDXum0CgYBH21ckGnzMSfJUEEcXO+Mc',
  '4VcZPy1zmdSnaD0ikH8W0X3d9zqEjArY5/X5kLryLtYj6n6RUT9CJg6jxP3BGIbh',
  'A1iVxBlS6q4YcZEOGaFSiyp9ifYuv8W0/AwApgYXVWvj0NkNj/kkB8cXGsZvFPEt',
  'hUTARRfZzHxFxRmHe+w3OA==',
  '-----END PRIVATE KEY-----',
].join('\n') + '\n';

const RECIPIENT_PRIVATE_PEM = [
  '-----BEGIN PRIVATE KEY-----',
  'MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC9J+8ThGd2QMD1',
  'tm7nqiDiPSyYJJmTcwEUUJ7h0hmwZVvtUUHe+oQFx9kgT0qn10kWpkP7zwDlvgjg',
  'FQOBsjr8pe/UXzszZbuZzscdu9t7IQSOWmxdplg/AXjQBHfGDLZ4Lvp9vast92xa',
  'PkBzUAOaKsMJEew5pIsTOHmsDBuVu4LseYMkjgrA9Y77XZapBezOQm6Y0DUh2kiZ',
  'fsTYHk3RFg8ZL6S2B8wvbNluGp3iW8diTZSQDQg//wOtH1hRLe0TOZX1mE1jLPdm',
  '67QwdlrkVrLqMx9sTge19RNBcOhgzF9Cnu1fFHXWTnWHVKyO76Z20T1sj2kzVf5h',
  'HQSppLABAgMBAAECggEATYDBxBDxpXG1vlewDGrYS2p+TZ5dcJ1j+VNpLiS8UtrM',
  '9ilfoIGru4Sdkc/7Slb7AvVAELpJ51hcYZgqlicVZTSGVlFou8/4tHYVfrjcnpAy',
  'QjOJiDuil7o+KplSDAtkbkztZLzkmRJySm2MUdMcjrvrqtk1nY6uT0NKEzTozonQ',
  'LTNwDYuq+FyLBb84NDBi+iuqUFE2W4IgKgw2Xm6Mdp4FA/3dkzWaXmloHhx5Z2cD',
  '8u7mu7UjfCaA/QOXSD1wlOCDMDycMs7PprAVTmjYqxU+LHFPAf1gYmmvVd6atGDj',
  'MBoqf0e0V9+RIovbYKfeK7v8QQAC3R5aCsW2vre9ewKBgQDesFgCp0FaQYhzC2hO',
  'PLemArZzkDEbV4aKp7rN5qeDtoKWIykNyEaItx+qtY1KAuhlc9SOG1Xfn6rj49pP',
  'yPJsYdtsYE3o1E4mQGKoWgpKwm0qQtEeuAYDYpKPFvhCv9PIol7xznn095V1ZsVA',
  '5rCtSRUZaWA+emnI3bxsaxtLqwKBgQDZc3tNBwYqLdomfjTEcjEfDwTsbHTq9tIG',
  '06tQ/vH86U6ItxOmYI04FjLRMRRKFAsbGP+m3xK3mmdSzNWfDLamQb96/OYE8Sbb',
  'lcQVN/t9bkDKxG/AKL6SnbyGaRkLMKQWRpVZmrxcVPap212faPgqGpq2GtqCmMOQ',
  '4H07vaNnAwKBgD29cok5yfq2FJig3whh+SDDu8YKgjLsb1bd7gLMIkF4RnhNw0IY',
  '9sVM0DDKKSQN7lTCanoDxik74WtRbuOT+PJnpyhDAxa8VfZw/2lhnVzgztdasxPr',
  'PW+O0sdtPON0v8jui5hLALEUO5HTLnkx/GXuzzS+bHqmAdI499avU2AFAoGAcClM',
  '1DJnT6JO/8PhW+K6y5Znp7tZo0iklLjhiOm30AhXZdVo4Uy0CtYIaDa0jHFCOTvv',
  'whcWBHY0DVVyapOYMrF/HuULkEkDDgh2F6vEoLIZ4XzpV2isw9twvrO/IzJ3sLW/',
  'm3Rg7A83G+32oJ74Ql9upbe8NdiuJzBj6Eis3BkCgYEAqgrGJgv0PovPqIsoVHEi',
  'CnNnhWZ8qLcDTECDYv5s/WpJDlB6AIlXWd4NBT5Zxh1D/1Bt0NWdVu3ltMhFLa76',
  'PyuFtUG/1Nbftm7zy+cw4u4DiexS7G6+8zLU2ZULx+KwSvProMlpXY07BIM/NKPy',
  'jvSo0ldLCWDAQhdsQwjfgyI=',
  '-----END PRIVATE KEY-----',
].join('\n') + '\n';

/** 2026-01-01T00:00:00Z. */
const CREATED_AT = 1_767_225_600_000;
/** 26 bytes: not a multiple of 3, so its base64 is padded; includes 0x00 and bytes ≥ 0x80. */
const PAYLOAD = Buffer.concat([Buffer.from('p2pdb vector payload v1', 'ascii'), Buffer.from([0x00, 0xff, 0x80])]);
const ENVELOPE_PLAINTEXT = Buffer.from('hello, recipient: p2pdb envelope vector ✓', 'utf8');
/** Low so the vectors are cheap to make and to check; the refusal at 21 bits uses the same proof. */
const VECTOR_POW_BITS = 12;
const NODE_POW_BITS = 21;
const POLICY = { allowedTables: '*', maxPayloadBytes: 65_536, maxFutureSkewMs: 300_000 } as const;
/** The node's clock for the wire cases: one minute after created_at. */
const NOW = CREATED_AT + 60_000;

interface Layout {
  field: string;
  offset: number;
  length: number;
}

function keyVector(info: PublicKeyInfo, privatePem: string) {
  return {
    bits: info.bits,
    private_pkcs8_pem: privatePem,
    spki_der_b64: toBase64(info.spki),
    fingerprint_hex: toHex(info.fingerprint),
  };
}

function canonicalLayout(e: EntryContent): Layout[] {
  const fields: [string, number][] = [
    ['magic', ENTRY_MAGIC.length],
    ['version', 1],
    ['table_length', 2],
    ['table', e.table.length],
    ['to', 32],
    ['created_at', 8],
    ['payload_length', 4],
    ['payload', e.payload.length],
  ];
  let offset = 0;
  return fields.map(([field, length]) => {
    const l = { field, offset, length };
    offset += length;
    return l;
  });
}

/**
 * Deterministic proof: token i takes the smallest nonce (u64 big-endian counter from 0) that
 * reaches the token bits. Not how a miner should search (it makes proofs predictable), but it
 * makes the vector reproducible.
 */
function deterministicProof(id: Uint8Array, clusterBits: number): Buffer {
  const need = tokenBitsFor(clusterBits);
  const proof = Buffer.alloc(POW_PROOF_BYTES);
  for (let i = 0; i < POW_TOKENS; i++) {
    const input = tokenInput(id, i);
    for (let n = 0n; ; n++) {
      input.writeBigUInt64BE(n, NONCE_OFFSET);
      if (leadingZeroBits(createHash('sha256').update(input).digest()) >= need) break;
    }
    input.copy(proof, i * POW_NONCE_BYTES, NONCE_OFFSET);
  }
  return proof;
}

function tokenBits(id: Uint8Array, proof: Uint8Array): number[] {
  return Array.from({ length: POW_TOKENS }, (_, i) => {
    const input = tokenInput(id, i);
    input.set(proof.subarray(i * POW_NONCE_BYTES, (i + 1) * POW_NONCE_BYTES), NONCE_OFFSET);
    return leadingZeroBits(createHash('sha256').update(input).digest());
  });
}

/**
 * The same key with the AlgorithmIdentifier's NULL parameters left out: OpenSSL and forge
 * both read it, but it is not the canonical encoding, so a node refuses it as a table key.
 */
function withoutNullParameters(spki: Buffer): Buffer {
  const algWithNull = Buffer.from('300d06092a864886f70d0101010500', 'hex');
  assert.ok(spki[0] === 0x30 && spki[1] === 0x82 && spki.subarray(4, 4 + algWithNull.length).equals(algWithNull));
  const body = Buffer.concat([Buffer.from('300b06092a864886f70d010101', 'hex'), spki.subarray(4 + algWithNull.length)]);
  return Buffer.concat([Buffer.from([0x30, 0x82, body.length >> 8, body.length & 0xff]), body]);
}

function flipLastByte(b: Buffer): Buffer {
  const out = Buffer.from(b);
  out[out.length - 1] = out[out.length - 1]! ^ 0x01;
  return out;
}

type Expect = { outcome: 'accepted'; id_hex: string; pow_value: number } | { outcome: 'refused'; code: string };

interface WireCase {
  name: string;
  why: string;
  pow_bits: number;
  now: number;
  entry: EntryJson | Record<string, unknown>;
  expect: Expect;
}

/** What a node answers, so each case is checked before it is printed. */
function outcomeOf(c: Omit<WireCase, 'expect'>): Expect {
  const policy: EntryPolicy = { ...POLICY, powBits: c.pow_bits };
  try {
    const valid = validateEntryJson(c.entry, policy, new PublicKeyCache(), c.now);
    return { outcome: 'accepted', id_hex: toHex(valid.id), pow_value: valid.powValue };
  } catch (e) {
    if (!isP2pdbError(e)) throw e;
    return { outcome: 'refused', code: e.code };
  }
}

function wireCase(c: Omit<WireCase, 'expect'>, expected: Expect['outcome'] | string): WireCase {
  const expect = outcomeOf(c);
  assert.equal(expect.outcome === 'accepted' ? 'accepted' : expect.code, expected, `wire case ${c.name}`);
  return { ...c, expect };
}

function makeVectors() {
  const table = parsePrivateKey(TABLE_PRIVATE_PEM);
  const recipient = parsePrivateKey(RECIPIENT_PRIVATE_PEM);

  // (b) entry content, canonical bytes, id
  const content: EntryContent = {
    version: ENTRY_VERSION,
    table: table.publicKey.spki,
    to: recipient.publicKey.fingerprint,
    createdAt: CREATED_AT,
    payload: PAYLOAD,
  };
  const canonical = canonicalBytes(content);
  const id = entryId(content);

  // (c) signature over the id
  const signature = signPss(table.key, id);
  const corrupted = flipLastByte(signature);
  assert.ok(verifyPss(table.publicKey.key, id, signature));
  assert.ok(!verifyPss(table.publicKey.key, id, corrupted));

  // (d) proof of work
  const proof = deterministicProof(id, VECTOR_POW_BITS);
  const value = proofValue(id, proof);
  assert.ok(value >= VECTOR_POW_BITS && value < NODE_POW_BITS);
  const otherId = createHash('sha256').update('p2pdb vector: another id').digest();
  const token0 = tokenInput(id, 0);
  token0.set(proof.subarray(0, POW_NONCE_BYTES), NONCE_OFFSET);

  // (e) envelope to the recipient
  const envelope = sealEnvelope(recipient.publicKey.key, ENVELOPE_PLAINTEXT);
  const parts = splitEnvelope(envelope);
  const aesKey = privateDecrypt(
    { key: recipient.key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
    parts.wrappedKey,
  );
  assert.ok(openEnvelope(recipient.key, envelope).equals(ENVELOPE_PLAINTEXT));
  const ivAt = 3 + parts.wrappedKey.length;
  const envelopeLayout: Layout[] = [
    { field: 'version', offset: 0, length: 1 },
    { field: 'wrapped_key_length', offset: 1, length: 2 },
    { field: 'wrapped_key', offset: 3, length: parts.wrappedKey.length },
    { field: 'iv', offset: ivAt, length: 12 },
    { field: 'ciphertext', offset: ivAt + 12, length: parts.ciphertext.length },
    { field: 'tag', offset: envelope.length - 16, length: 16 },
    { field: 'aad', offset: 0, length: ivAt },
  ];

  // (f) wire form and refusals
  const entry: Entry = { ...content, signature, proof };
  const good = entryToJson(entry, id);
  const { id: _omit, ...goodWithoutId } = good;
  const ncTable = withoutNullParameters(table.publicKey.spki);
  const ncContent: EntryContent = { ...content, table: ncTable };
  const ncId = entryId(ncContent);
  const ncEntry = entryToJson({ ...ncContent, signature: signPss(table.key, ncId), proof: deterministicProof(ncId, VECTOR_POW_BITS) }, ncId);
  const base = { pow_bits: VECTOR_POW_BITS, now: NOW };
  const cases: WireCase[] = [
    wireCase({ name: 'accepted', why: 'the entry of the vectors above, with its id', ...base, entry: good }, 'accepted'),
    wireCase({ name: 'accepted_without_id', why: 'the id field is optional; the node computes it', ...base, entry: goodWithoutId }, 'accepted'),
    wireCase({ name: 'wrong_id', why: 'the stated id is not the hash of the content', ...base, entry: { ...good, id: toHex(otherId) } }, 'id_mismatch'),
    wireCase({ name: 'bad_signature', why: 'the corrupted signature of the signature vector', ...base, entry: { ...good, signature: toBase64(corrupted) } }, 'bad_signature'),
    wireCase({ name: 'pow_insufficient', why: `the same entry at a node requiring ${NODE_POW_BITS} bits`, ...base, pow_bits: NODE_POW_BITS, entry: good }, 'pow_insufficient'),
    wireCase({ name: 'non_canonical_table_key', why: 'the table key without the NULL algorithm parameters; id, proof and signature are right for those bytes', ...base, entry: ncEntry }, 'bad_key'),
    wireCase({ name: 'malformed_base64', why: 'the signature without its base64 padding', ...base, entry: { ...good, signature: toBase64(signature).replace(/=+$/, '') } }, 'malformed'),
    wireCase({ name: 'created_in_future', why: 'the node\'s clock is 5 minutes and 1 ms behind created_at', ...base, now: CREATED_AT - POLICY.maxFutureSkewMs - 1, entry: good }, 'created_in_future'),
  ];

  return {
    format: 'p2pdb test vectors, protocol version 1',
    generator: 'node dist/scripts/make-vectors.js',
    keys: {
      table: keyVector(table.publicKey, TABLE_PRIVATE_PEM),
      recipient: keyVector(recipient.publicKey, RECIPIENT_PRIVATE_PEM),
    },
    entry: {
      version: content.version,
      table_spki_b64: toBase64(content.table),
      to_hex: toHex(content.to),
      created_at: content.createdAt,
      payload_hex: toHex(content.payload),
      canonical_hex: toHex(canonical),
      canonical_layout: canonicalLayout(content),
      id_hex: toHex(id),
    },
    signature: {
      key: 'table',
      scheme: 'RSASSA-PSS',
      hash: 'SHA-256',
      mgf: 'MGF1-SHA-256',
      salt_bytes: PSS_SALT_BYTES,
      message_hex: toHex(id),
      valid_b64: toBase64(signature),
      corrupted_b64: toBase64(corrupted),
    },
    pow: {
      tag_ascii: POW_TAG.toString('ascii'),
      id_hex: toHex(id),
      proof_b64: toBase64(proof),
      token_bits: tokenBits(id, proof),
      value_bits: value,
      token0_input_hex: toHex(token0),
      token0_digest_hex: createHash('sha256').update(token0).digest('hex'),
      other_id_hex: toHex(otherId),
      other_token_bits: tokenBits(otherId, proof),
      other_value_bits: proofValue(otherId, proof),
    },
    envelope: {
      key: 'recipient',
      plaintext_hex: toHex(ENVELOPE_PLAINTEXT),
      envelope_b64: toBase64(envelope),
      aes_key_hex: toHex(aesKey),
      layout: envelopeLayout,
    },
    wire: {
      policy: { allowed_tables: POLICY.allowedTables, max_payload_bytes: POLICY.maxPayloadBytes, max_future_skew_ms: POLICY.maxFutureSkewMs },
      cases,
    },
  };
}

/** Indented JSON with number arrays and flat objects (layout rows) on one line each, for reading. */
function format(value: unknown): string {
  return JSON.stringify(value, null, 2)
    .replace(/\[\s*(-?\d+(?:,\s*-?\d+)*)\s*\]/g, (_, nums: string) => `[${nums.split(/,\s*/).join(', ')}]`)
    .replace(/\{\s*("field": "\w+"),\s*("offset": \d+),\s*("length": \d+)\s*\}/g, '{ $1, $2, $3 }');
}

process.stdout.write(format(makeVectors()) + '\n');
