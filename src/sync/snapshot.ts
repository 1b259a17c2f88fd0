/**
 * The index snapshot file (DATA_DIR/sync-index.bin): the leaves of every table's prefix tree
 * and the store seq they cover, so a restart reads ~2.5 MiB per large table instead of
 * rescanning every entry. Layout (big-endian):
 *   "P2SYNCIX" | u32 format version (1) | u64 covered seq | u32 tables |
 *   per table: 32-byte fingerprint | u32 leaves | per leaf: u16 leaf index | u32 count | 32-byte sum |
 *   32-byte SHA-256 of everything before it.
 * Written atomically (temp file, fsync, rename); anything unexpected on load means "no snapshot".
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../util/atomic-file.js';
import { PrefixForest } from './prefix-tree.js';
import { idWords, SUM_WORDS } from './sum256.js';

const MAGIC = Buffer.from('P2SYNCIX');
export const SNAPSHOT_VERSION = 1;
const LEAF_BYTES = 2 + 4 + 32;

export function encodeSnapshot(forest: PrefixForest, coveredSeq: number): Buffer {
  const tables = forest.entries().filter((t) => t.tree.total > 0);
  const parts: Buffer[] = [];
  const head = Buffer.alloc(8 + 4 + 8 + 4);
  MAGIC.copy(head, 0);
  head.writeUInt32BE(SNAPSHOT_VERSION, 8);
  head.writeBigUInt64BE(BigInt(coveredSeq), 12);
  head.writeUInt32BE(tables.length, 20);
  parts.push(head);
  for (const { table, tree } of tables) {
    const leaves = [...tree.leaves()];
    const b = Buffer.alloc(36 + leaves.length * LEAF_BYTES);
    table.copy(b, 0);
    b.writeUInt32BE(leaves.length, 32);
    let o = 36;
    for (const l of leaves) {
      b.writeUInt16BE(l.leaf, o);
      b.writeUInt32BE(l.count, o + 2);
      for (let w = 0; w < SUM_WORDS; w++) b.writeUInt32BE(l.sums[l.off + w]!, o + 6 + (SUM_WORDS - 1 - w) * 4);
      o += LEAF_BYTES;
    }
    parts.push(b);
  }
  const body = Buffer.concat(parts);
  return Buffer.concat([body, createHash('sha256').update(body).digest()]);
}

/** The forest and covered seq of a snapshot, or a reason it cannot be used. */
export function decodeSnapshot(bytes: Buffer): { forest: PrefixForest; coveredSeq: number } | { error: string } {
  if (bytes.length < 24 + 32) return { error: 'too short' };
  const body = bytes.subarray(0, bytes.length - 32);
  if (!createHash('sha256').update(body).digest().equals(bytes.subarray(bytes.length - 32))) return { error: 'checksum mismatch' };
  if (!body.subarray(0, 8).equals(MAGIC)) return { error: 'not a sync index snapshot' };
  const version = body.readUInt32BE(8);
  if (version !== SNAPSHOT_VERSION) return { error: `format version ${version}` };
  const coveredSeq = Number(body.readBigUInt64BE(12));
  const tables = body.readUInt32BE(20);
  const forest = new PrefixForest();
  const words = new Uint32Array(SUM_WORDS);
  let o = 24;
  for (let t = 0; t < tables; t++) {
    if (o + 36 > body.length) return { error: 'truncated' };
    const table = body.subarray(o, o + 32);
    const leaves = body.readUInt32BE(o + 32);
    o += 36;
    if (o + leaves * LEAF_BYTES > body.length) return { error: 'truncated' };
    let last = -1;
    for (let i = 0; i < leaves; i++, o += LEAF_BYTES) {
      const leaf = body.readUInt16BE(o);
      if (leaf <= last) return { error: 'leaves out of order' };
      last = leaf;
      idWords(body.subarray(o + 6, o + 38), words);
      forest.addLeaf(table, leaf, body.readUInt32BE(o + 2), words, 0);
    }
  }
  if (o !== body.length) return { error: 'trailing bytes' };
  return { forest, coveredSeq };
}

export async function readSnapshot(file: string): Promise<Buffer | null> {
  try {
    return await readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Writes atomically: a crash leaves either the old snapshot or the new one, never half of one. */
export function writeSnapshot(file: string, bytes: Buffer): Promise<void> {
  return writeFileAtomic(file, bytes);
}
