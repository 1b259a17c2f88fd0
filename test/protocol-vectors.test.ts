/**
 * The test vectors published in docs/PROTOCOL.md (its ```json vectors block) checked against our code, so the document and the
 * implementation cannot drift apart. Deterministic values (keys, canonical bytes, id, proof)
 * are recomputed exactly; randomized ones (signature, envelope) must verify / open, with
 * node:crypto and with node-forge.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { constants, createDecipheriv, createHash, privateDecrypt } from 'node:crypto';
import { parsePrivateKey, parseWireSpki, PublicKeyCache } from '../src/crypto/keys.js';
import { PSS_SALT_BYTES, verifyPss } from '../src/crypto/signature.js';
import { openEnvelope, splitEnvelope } from '../src/crypto/envelope.js';
import * as forgeCrypto from '../src/crypto/forge.js';
import { canonicalBytes, ENTRY_MAGIC, entryId, type EntryContent } from '../src/entry/canonical.js';
import { ENTRY_VERSION } from '../src/entry/types.js';
import { validateEntryJson, type EntryPolicy } from '../src/entry/validate.js';
import { isP2pdbError } from '../src/errors.js';
import {
  leadingZeroBits,
  NONCE_OFFSET,
  POW_CLUSTER_BONUS,
  POW_NONCE_BYTES,
  POW_TAG,
  POW_TOKENS,
  proofValue,
  tokenInput,
} from '../src/pow/cluster.js';
import { decodeReply, decodeRequest, encodeReply, encodeRequest, type SyncReply, type SyncRequest } from '../src/sync/codec.js';

// --- finding the block ---

const root = new URL('../../', import.meta.url); // dist/test/ -> repository root
const FENCE = '```json vectors';

function readVectorsDoc(): { file: string; text: string } {
  const file = 'docs/PROTOCOL.md';
  const path = new URL(file, root);
  assert.ok(existsSync(path), `${file} is missing`);
  const text = readFileSync(path, 'utf8');
  assert.ok(text.includes(FENCE), `no ${FENCE} block in ${file}`);
  return { file, text };
}

function extractBlock(file: string, text: string): unknown {
  const blocks = [...text.matchAll(/^```json vectors[ \t]*\r?\n([\s\S]*?)^```[ \t]*$/gm)];
  assert.equal(blocks.length, 1, `${file}: exactly one ${FENCE} block`);
  return JSON.parse(blocks[0]![1]!);
}

// --- the shape of the document (only what the checks read) ---

interface Layout {
  field: string;
  offset: number;
  length: number;
}
interface KeyVector {
  bits: number;
  private_pkcs8_pem: string;
  spki_der_b64: string;
  fingerprint_hex: string;
}
type Expect = { outcome: 'accepted'; id_hex: string; pow_value: number } | { outcome: 'refused'; code: string };
interface Vectors {
  keys: { table: KeyVector; recipient: KeyVector };
  entry: {
    version: number;
    table_spki_b64: string;
    to_hex: string;
    created_at: number;
    payload_hex: string;
    canonical_hex: string;
    canonical_layout: Layout[];
    id_hex: string;
  };
  signature: {
    key: 'table';
    scheme: string;
    hash: string;
    mgf: string;
    salt_bytes: number;
    message_hex: string;
    valid_b64: string;
    corrupted_b64: string;
  };
  pow: {
    tag_ascii: string;
    id_hex: string;
    proof_b64: string;
    token_bits: number[];
    value_bits: number;
    token0_input_hex: string;
    token0_digest_hex: string;
    other_id_hex: string;
    other_token_bits: number[];
    other_value_bits: number;
  };
  envelope: { key: 'recipient'; plaintext_hex: string; envelope_b64: string; aes_key_hex: string; layout: Layout[] };
  wire: {
    policy: { allowed_tables: '*'; max_payload_bytes: number; max_future_skew_ms: number };
    cases: { name: string; pow_bits: number; now: number; entry: Record<string, unknown>; expect: Expect }[];
  };
}

const { file, text } = readVectorsDoc();
const v = extractBlock(file, text) as Vectors;

const hex = (s: string) => Buffer.from(s, 'hex');
const b64 = (s: string) => Buffer.from(s, 'base64');
const buf = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

function sliceOf(layout: Layout[], bytes: Buffer, field: string): Buffer {
  const l = layout.find((x) => x.field === field);
  assert.ok(l, `layout has ${field}`);
  return bytes.subarray(l.offset, l.offset + l.length);
}

// --- the checks ---

test(`vectors come from ${FENCE} in a doc`, () => {
  assert.ok(v && typeof v === 'object');
  // Lower-case hex and standard padded base64 throughout, as the wire demands.
  for (const h of [v.entry.to_hex, v.entry.id_hex, v.pow.id_hex, v.keys.table.fingerprint_hex]) assert.match(h, /^[0-9a-f]{64}$/);
  for (const s of [v.entry.table_spki_b64, v.signature.valid_b64, v.pow.proof_b64, v.envelope.envelope_b64]) {
    assert.equal(b64(s).toString('base64'), s, 'base64 round-trips');
  }
});

test('(a) keys: SPKI DER and fingerprint, from node:crypto and from forge', () => {
  for (const [name, k] of Object.entries(v.keys)) {
    const n = parsePrivateKey(k.private_pkcs8_pem);
    assert.equal(n.publicKey.spki.toString('base64'), k.spki_der_b64, `${name}: SPKI`);
    assert.equal(n.publicKey.fingerprint.toString('hex'), k.fingerprint_hex, `${name}: fingerprint`);
    assert.equal(createHash('sha256').update(b64(k.spki_der_b64)).digest('hex'), k.fingerprint_hex);
    assert.equal(n.publicKey.bits, k.bits);
    assert.ok(parseWireSpki(b64(k.spki_der_b64)), `${name}: canonical`);
    const f = forgeCrypto.parsePrivateKey(k.private_pkcs8_pem);
    assert.equal(buf(f.publicKey.spki).toString('base64'), k.spki_der_b64, `${name}: forge SPKI`);
    assert.equal(buf(f.publicKey.fingerprint).toString('hex'), k.fingerprint_hex, `${name}: forge fingerprint`);
    assert.equal(forgeCrypto.exportPrivatePem(f.key), k.private_pkcs8_pem, `${name}: PKCS#8 PEM as node and forge write it`);
  }
});

test('(b) entry: canonical bytes and id recomputed exactly', () => {
  const e = v.entry;
  assert.equal(e.version, ENTRY_VERSION);
  assert.equal(e.table_spki_b64, v.keys.table.spki_der_b64, 'table is the table key');
  assert.equal(e.to_hex, v.keys.recipient.fingerprint_hex, 'to is the recipient fingerprint');
  const content: EntryContent = {
    version: e.version,
    table: b64(e.table_spki_b64),
    to: hex(e.to_hex),
    createdAt: e.created_at,
    payload: hex(e.payload_hex),
  };
  const canonical = canonicalBytes(content);
  assert.equal(canonical.toString('hex'), e.canonical_hex);
  assert.equal(entryId(content).toString('hex'), e.id_hex);
  assert.equal(buf(forgeCrypto.sha256(canonical)).toString('hex'), e.id_hex, 'id is plain SHA-256 of the bytes');

  // The published layout tiles the bytes and each slice holds its field.
  let at = 0;
  for (const l of e.canonical_layout) {
    assert.equal(l.offset, at, `${l.field} follows the previous field`);
    at += l.length;
  }
  assert.equal(at, canonical.length);
  const s = (f: string) => sliceOf(e.canonical_layout, canonical, f);
  assert.ok(s('magic').equals(ENTRY_MAGIC));
  assert.equal(s('version').readUInt8(0), e.version);
  assert.equal(s('table_length').readUInt16BE(0), content.table.length);
  assert.ok(s('table').equals(content.table));
  assert.ok(s('to').equals(content.to));
  assert.equal(s('created_at').readBigUInt64BE(0), BigInt(e.created_at));
  assert.equal(s('payload_length').readUInt32BE(0), content.payload.length);
  assert.ok(s('payload').equals(content.payload));
});

test('(c) signature over the id verifies with node:crypto and with forge; the corrupted one with neither', () => {
  const sig = v.signature;
  assert.equal(sig.message_hex, v.entry.id_hex);
  assert.deepEqual([sig.scheme, sig.hash, sig.mgf, sig.salt_bytes], ['RSASSA-PSS', 'SHA-256', 'MGF1-SHA-256', PSS_SALT_BYTES]);
  const n = parsePrivateKey(v.keys[sig.key].private_pkcs8_pem).publicKey;
  const f = forgeCrypto.parsePublicKey(b64(v.keys[sig.key].spki_der_b64));
  const message = hex(sig.message_hex);
  assert.ok(verifyPss(n.key, message, b64(sig.valid_b64)), 'node:crypto verifies');
  assert.ok(forgeCrypto.verifyPss(f.key, message, b64(sig.valid_b64)), 'forge verifies');
  assert.equal(verifyPss(n.key, message, b64(sig.corrupted_b64)), false);
  assert.equal(forgeCrypto.verifyPss(f.key, message, b64(sig.corrupted_b64)), false);
});

test('(d) proof of work: token bits and value recomputed, for the id and for another id', () => {
  const p = v.pow;
  assert.equal(p.tag_ascii, POW_TAG.toString('ascii'));
  assert.equal(p.id_hex, v.entry.id_hex);
  const proof = b64(p.proof_b64);
  const bitsOf = (id: Buffer) =>
    Array.from({ length: POW_TOKENS }, (_, i) => {
      const input = tokenInput(id, i);
      input.set(proof.subarray(i * POW_NONCE_BYTES, (i + 1) * POW_NONCE_BYTES), NONCE_OFFSET);
      return leadingZeroBits(createHash('sha256').update(input).digest());
    });
  for (const [id, tokens, value] of [
    [hex(p.id_hex), p.token_bits, p.value_bits],
    [hex(p.other_id_hex), p.other_token_bits, p.other_value_bits],
  ] as const) {
    assert.deepEqual(bitsOf(id), tokens);
    assert.equal(proofValue(id, proof), value);
    assert.equal(Math.min(...tokens) + POW_CLUSTER_BONUS, value, 'value = weakest token + 4');
  }
  // Token 0's 50-byte input, spelled out: tag | id | index 0 | nonce 0.
  const token0 = Buffer.concat([POW_TAG, hex(p.id_hex), Buffer.from([0]), proof.subarray(0, POW_NONCE_BYTES)]);
  assert.equal(token0.toString('hex'), p.token0_input_hex);
  assert.equal(createHash('sha256').update(token0).digest('hex'), p.token0_digest_hex);
  assert.equal(leadingZeroBits(hex(p.token0_digest_hex)), p.token_bits[0]);
});

test('(e) envelope opens to the plaintext with node:crypto and with forge; layout as published', () => {
  const e = v.envelope;
  const pem = v.keys[e.key].private_pkcs8_pem;
  const envelope = b64(e.envelope_b64);
  const plaintext = hex(e.plaintext_hex);
  const n = parsePrivateKey(pem);
  assert.ok(openEnvelope(n.key, envelope).equals(plaintext), 'node:crypto opens it');
  assert.ok(buf(forgeCrypto.openEnvelope(forgeCrypto.parsePrivateKey(pem).key, envelope)).equals(plaintext), 'forge opens it');

  // Step by step from the published layout, without openEnvelope.
  const s = (f: string) => sliceOf(e.layout, envelope, f);
  assert.equal(s('version')[0], 1);
  assert.equal(s('wrapped_key_length').readUInt16BE(0), s('wrapped_key').length);
  assert.equal(s('wrapped_key').length, n.publicKey.bits / 8);
  assert.equal(s('iv').length, 12);
  assert.equal(s('tag').length, 16);
  const at = (f: string) => e.layout.find((l) => l.field === f)!;
  assert.equal(at('iv').offset, 3 + s('wrapped_key').length, 'iv follows the header');
  assert.equal(at('ciphertext').offset, at('iv').offset + 12, 'ciphertext follows the iv');
  assert.equal(at('tag').offset, at('ciphertext').offset + at('ciphertext').length, 'tag follows the ciphertext');
  assert.equal(at('tag').offset + 16, envelope.length, 'tag ends the envelope');
  assert.ok(s('aad').equals(envelope.subarray(0, 3 + s('wrapped_key').length)), 'aad is the header');
  const aesKey = privateDecrypt({ key: n.key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, s('wrapped_key'));
  assert.equal(aesKey.toString('hex'), e.aes_key_hex);
  const gcm = createDecipheriv('aes-256-gcm', aesKey, s('iv'));
  gcm.setAAD(s('aad'));
  gcm.setAuthTag(s('tag'));
  assert.ok(Buffer.concat([gcm.update(s('ciphertext')), gcm.final()]).equals(plaintext));

  // And our splitters agree with the published offsets.
  const parts = splitEnvelope(envelope);
  const fparts = forgeCrypto.splitEnvelope(envelope);
  for (const [field, key] of [['aad', 'aad'], ['wrapped_key', 'wrappedKey'], ['iv', 'iv'], ['ciphertext', 'ciphertext'], ['tag', 'tag']] as const) {
    assert.ok(parts[key].equals(s(field)), `node ${field}`);
    assert.ok(buf(fparts[key]).equals(s(field)), `forge ${field}`);
  }
});

test('(f) wire entries: each gives its stated outcome through validateEntryJson', () => {
  const w = v.wire;
  assert.deepEqual(w.policy, { allowed_tables: '*', max_payload_bytes: 65536, max_future_skew_ms: 300000 });
  // Every refusal the vectors promise is there (a case dropped from the doc fails here).
  const outcomes = new Set(w.cases.map((c) => (c.expect.outcome === 'accepted' ? 'accepted' : c.expect.code)));
  for (const o of ['accepted', 'id_mismatch', 'bad_signature', 'pow_insufficient', 'bad_key', 'malformed']) {
    assert.ok(outcomes.has(o), `a case with outcome ${o}`);
  }
  for (const c of w.cases) {
    const policy: EntryPolicy = {
      allowedTables: w.policy.allowed_tables,
      maxPayloadBytes: w.policy.max_payload_bytes,
      maxFutureSkewMs: w.policy.max_future_skew_ms,
      powBits: c.pow_bits,
    };
    let got: Expect;
    try {
      const valid = validateEntryJson(c.entry, policy, new PublicKeyCache(), c.now);
      got = { outcome: 'accepted', id_hex: valid.id.toString('hex'), pow_value: valid.powValue };
    } catch (e) {
      if (!isP2pdbError(e)) throw e;
      got = { outcome: 'refused', code: e.code };
    }
    assert.deepEqual(got, c.expect, `case ${c.name}`);
  }

  // The accepted entry is the one the vectors above describe, field by field.
  const accepted = w.cases.find((c) => c.name === 'accepted');
  assert.ok(accepted);
  assert.deepEqual(accepted.entry, {
    v: v.entry.version,
    id: v.entry.id_hex,
    table: v.entry.table_spki_b64,
    to: v.entry.to_hex,
    created_at: v.entry.created_at,
    payload: hex(v.entry.payload_hex).toString('base64'),
    signature: v.signature.valid_b64,
    proof: v.pow.proof_b64,
  });
});

// --- §9.6 sync-message-vectors: every item kind and section, byte for byte ---

/** Byte strings of the sync codec travel as hex in the document: these fields hold them. */
const SYNC_BYTE_FIELDS = new Set(['table', 'fingerprint', 'ids', 'need']);

function syncToJson(v: unknown): unknown {
  if (Buffer.isBuffer(v)) return v.toString('hex');
  if (Array.isArray(v)) return v.map(syncToJson);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, syncToJson(x)]));
  return v;
}

function syncFromJson(v: unknown, key = ''): unknown {
  if (typeof v === 'string' && SYNC_BYTE_FIELDS.has(key)) return Buffer.from(v, 'hex');
  if (Array.isArray(v)) return v.map((x) => syncFromJson(x, key));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, syncFromJson(x, k)]));
  return v;
}

test('(h) sync message vectors: decoding gives the decoded form, encoding gives the bytes', () => {
  const { file, text } = readVectorsDoc();
  const blocks = [...text.matchAll(/^```json sync-message-vectors[ \t]*\r?\n([\s\S]*?)^```[ \t]*$/gm)];
  assert.equal(blocks.length, 1, `${file}: exactly one sync-message-vectors block`);
  const m = JSON.parse(blocks[0]![1]!) as {
    request: { hex: string; decoded: unknown };
    reply: { hex: string; decoded: unknown };
  };
  assert.deepEqual(syncToJson(decodeRequest(Buffer.from(m.request.hex, 'hex'))), m.request.decoded);
  assert.equal(encodeRequest(syncFromJson(m.request.decoded) as SyncRequest).toString('hex'), m.request.hex);
  assert.deepEqual(syncToJson(decodeReply(Buffer.from(m.reply.hex, 'hex'))), m.reply.decoded);
  assert.equal(encodeReply(syncFromJson(m.reply.decoded) as SyncReply).toString('hex'), m.reply.hex);
  // The vector covers every item kind and section kind (a case dropped from the doc fails here).
  const kinds = new Set<string>();
  JSON.stringify([m.request.decoded, m.reply.decoded], (k, v: unknown) => {
    if (k === 'kind' && typeof v === 'string') kinds.add(v);
    return v;
  });
  for (const k of ['summary', 'children', 'ids', 'none', 'diff', 'table', 'refused', 'extra']) assert.ok(kinds.has(k), `a ${k}`);
  // Its tables are the ones the text names.
  const req = m.request.decoded as { tables: { table: string }[] };
  assert.equal(req.tables[0]!.table, createHash('sha256').update('p2pdb sync vector table').digest('hex'));
  assert.equal(req.tables[1]!.table, createHash('sha256').update('p2pdb sync vector table 2').digest('hex'));
});
