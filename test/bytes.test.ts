import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fromBase64, fromHex } from '../src/util/bytes.js';

test('fromBase64 takes canonical padded base64 only', () => {
  assert.deepEqual(fromBase64('QUJD', 'f'), Buffer.from('ABC'));
  assert.deepEqual(fromBase64('QQ==', 'f'), Buffer.from('A'));
  assert.deepEqual(fromBase64('+/8=', 'f'), Buffer.from([0xfb, 0xff]));
  for (const bad of ['QR==', 'Q Q=', '-_8=', 'QQ', 'QQ=\n', '====', 'QUJD\n', 12, null]) {
    assert.throws(() => fromBase64(bad, 'f'), { code: 'malformed' }, JSON.stringify(bad));
  }
  assert.throws(() => fromBase64('QUJDRA==', 'f', 3), { code: 'payload_too_large' });
});

test('fromHex takes lower-case hex of the exact length', () => {
  assert.equal(fromHex('ab'.repeat(32), 32, 'id').length, 32);
  for (const bad of ['AB'.repeat(32), 'ab'.repeat(31), 'zz'.repeat(32), 7]) {
    assert.throws(() => fromHex(bad, 32, 'id'), { code: 'malformed' });
  }
});
