/**
 * The seed's clients posted form fields with PEM keys: `table` (the table's public key) and
 * `to` (the recipient's public key). We accept those spellings and turn them into the wire
 * form (base64 SPKI DER and a fingerprint) before the normal checks.
 */
import { parsePublicKey } from '../crypto/keys.js';
import { toBase64, toHex } from '../util/bytes.js';

const PEM_RE = /-----BEGIN [A-Z ]*PUBLIC KEY-----/;

export function normaliseSeedFields(form: Record<string, unknown>): Record<string, unknown> {
  const out = { ...form };
  if (typeof out.table === 'string' && PEM_RE.test(out.table)) out.table = toBase64(parsePublicKey(out.table).spki);
  if (typeof out.to === 'string' && PEM_RE.test(out.to)) out.to = toHex(parsePublicKey(out.to).fingerprint);
  if (out.v === undefined) out.v = 1;
  return out;
}
