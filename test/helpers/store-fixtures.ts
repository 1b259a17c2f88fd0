/**
 * Entries for store tests. The store does not verify signatures or proofs, so these are
 * random bytes of realistic sizes; only tableFingerprint = SHA-256(table) is kept true.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sha256 } from '../../src/crypto/hash.js';
import { ENTRY_VERSION } from '../../src/entry/types.js';
import type { ValidEntry } from '../../src/entry/validate.js';

export interface FakeTable {
  spki: Buffer;
  fingerprint: Buffer;
}

export function fakeTable(spkiBytes = 294): FakeTable {
  const spki = randomBytes(spkiBytes);
  return { spki, fingerprint: sha256(spki) };
}

export function fakeRecipient(): Buffer {
  return randomBytes(32);
}

export interface FakeEntryOptions {
  table: FakeTable;
  to: Buffer;
  createdAt?: number;
  payloadBytes?: number;
  signatureBytes?: number;
}

export function fakeEntry(o: FakeEntryOptions): ValidEntry {
  return {
    id: randomBytes(32),
    tableFingerprint: o.table.fingerprint,
    powValue: 21,
    entry: {
      version: ENTRY_VERSION,
      table: o.table.spki,
      to: o.to,
      createdAt: o.createdAt ?? 1_700_000_000_000 + Math.floor(Math.random() * 1e9),
      payload: randomBytes(o.payloadBytes ?? 600),
      signature: randomBytes(o.signatureBytes ?? 256),
      proof: randomBytes(128),
    },
  };
}

/** A fresh directory under the OS temp dir; remove() deletes it. */
export async function tempDir(tag: string): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), `p2pdb-${tag}-`));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}
