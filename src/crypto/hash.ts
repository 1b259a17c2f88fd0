import { createHash } from 'node:crypto';

/** SHA-256 of the concatenation of the parts, without copying them together first. */
export function sha256(...parts: Uint8Array[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}
