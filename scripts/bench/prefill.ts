/**
 * Fills a store with deterministic synthetic entries of realistic sizes (32-byte id,
 * 600-byte payload, 256-byte signature, 128-byte proof, 294-byte table keys), through the
 * store's own insert path. They do not verify (the store does not verify), so a million take
 * about a minute instead of the hours that signing and minting would. Prefilled files are
 * cached under .bench-cache/ so repeated benchmark runs copy instead of rebuilding.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { copyFile, mkdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sha256 } from '../../src/crypto/hash.js';
import { ENTRY_VERSION } from '../../src/entry/types.js';
import type { ValidEntry } from '../../src/entry/validate.js';
import { SQLITE_MIGRATIONS as MIGRATIONS } from '../../src/store/sqlite/migrations.js';
import { SQLITE_PAGE_SIZE } from '../../src/store/sqlite/pragmas.js';
import { openSqliteStore as openStore } from '../../src/store/sqlite/open.js';
import type { EntryStore } from '../../src/store/types.js';

export interface PrefillOptions {
  seed?: number;
  tables?: number;
  recipients?: number;
}

const DEFAULTS = { seed: 1, tables: 16, recipients: 1000 };
const ENTRY_RANDOM_BYTES = 32 + 600 + 256 + 128;
/** Repo root from dist/scripts/bench/ (or scripts/bench/ under a TS runner): cwd-independent. */
const REPO_ROOT = fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../../../' : '../../', import.meta.url));
export const PREFILL_CACHE_DIR = path.join(REPO_ROOT, '.bench-cache');

/** A deterministic byte stream (AES-256-CTR keystream of the seed): fast and reproducible. */
class ByteStream {
  private readonly cipher;
  constructor(seed: string) {
    const key = createHash('sha256').update(`p2pdb-prefill:${seed}`).digest();
    this.cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  }
  next(n: number): Buffer {
    return this.cipher.update(Buffer.alloc(n));
  }
}

/** The synthetic data set: tables and recipients, then entries in order. */
export class SyntheticEntries {
  readonly tables: { spki: Buffer; fingerprint: Buffer }[];
  readonly recipients: Buffer[];
  private readonly stream: ByteStream;
  private index = 0;

  constructor(opts: PrefillOptions = {}, streamName = 'entries') {
    const o = { ...DEFAULTS, ...opts };
    const keys = new ByteStream(`${o.seed}:keys`);
    this.tables = Array.from({ length: o.tables }, () => {
      const spki = keys.next(294);
      return { spki, fingerprint: sha256(spki) };
    });
    this.recipients = Array.from({ length: o.recipients }, () => keys.next(32));
    this.stream = new ByteStream(`${o.seed}:${streamName}`);
  }

  next(count: number): ValidEntry[] {
    const bytes = this.stream.next(count * ENTRY_RANDOM_BYTES);
    const out: ValidEntry[] = new Array(count);
    for (let k = 0; k < count; k++, this.index++) {
      const i = this.index;
      let o = k * ENTRY_RANDOM_BYTES;
      // Copies, so each Buffer owns its memory rather than pinning the whole chunk.
      const take = (n: number) => Buffer.from(bytes.subarray(o, (o += n)));
      const table = this.tables[i % this.tables.length]!;
      out[k] = {
        id: take(32),
        tableFingerprint: table.fingerprint,
        powValue: 21,
        entry: {
          version: ENTRY_VERSION,
          table: table.spki,
          // A multiplicative walk, so consecutive entries go to different recipients.
          to: this.recipients[(i * 7919) % this.recipients.length]!,
          createdAt: 1_700_000_000_000 + i,
          payload: take(600),
          signature: take(256),
          proof: take(128),
        },
      };
    }
    return out;
  }
}

/** Appends n synthetic entries to the store at filename (created if missing). */
export async function prefillStore(filename: string, n: number, opts: PrefillOptions = {}): Promise<{ seconds: number; entries_per_s: number }> {
  // Durability 'normal' and big commits: a benchmark fixture need not survive power loss.
  return prefillInto(await openStore({ filename, durability: 'normal', maxBatchEntries: 10_000 }), n, opts);
}

/** Appends n synthetic entries to an open store of either backend, then closes it. */
export async function prefillInto(store: EntryStore, n: number, opts: PrefillOptions = {}): Promise<{ seconds: number; entries_per_s: number }> {
  const source = new SyntheticEntries(opts);
  const t0 = performance.now();
  try {
    let left = n;
    const call = 2500;
    // Progress every million: how the insert rate falls as the store grows (stderr, not a figure).
    let mark = performance.now();
    let markDone = 0;
    while (left > 0) {
      const done = n - left;
      if (done - markDone >= 1_000_000) {
        const now = performance.now();
        process.stderr.write(`prefill: ${done} stored, last ${done - markDone} at ${Math.round(((done - markDone) / (now - mark)) * 1000)}/s\n`);
        mark = now;
        markDone = done;
      }
      const calls: ValidEntry[][] = [];
      for (let c = 0; c < 4 && left > 0; c++) {
        const size = Math.min(call, left);
        calls.push(source.next(size));
        left -= size;
      }
      const outcomes = await Promise.all(calls.map((entries) => store.insert(entries)));
      if (outcomes.flat().some((o) => o !== 'stored')) throw new Error('prefill produced a duplicate id (reused seed on a filled store?)');
    }
  } finally {
    await store.close();
  }
  const seconds = (performance.now() - t0) / 1000;
  return { seconds, entries_per_s: n / seconds };
}

function cacheName(n: number, opts: PrefillOptions): string {
  const o = { ...DEFAULTS, ...opts };
  // The schema is part of the name: a new migration invalidates old files.
  const schema = MIGRATIONS[MIGRATIONS.length - 1]!.name;
  return `prefill-${schema}-p${SQLITE_PAGE_SIZE}-n${n}-seed${o.seed}-t${o.tables}-r${o.recipients}.sqlite`;
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

/** Path of a cached prefilled store of n entries, built on first use. Copy it; do not open it in place. */
export async function cachedPrefill(n: number, opts: PrefillOptions = {}): Promise<string> {
  const file = path.join(PREFILL_CACHE_DIR, cacheName(n, opts));
  if (await exists(file)) return file;
  await mkdir(PREFILL_CACHE_DIR, { recursive: true });
  const building = `${file}.building-${process.pid}`;
  await rm(building, { force: true });
  process.stderr.write(`prefill: building ${path.basename(file)} (${n} entries)\n`);
  const { seconds, entries_per_s } = await prefillStore(building, n, opts);
  process.stderr.write(`prefill: ${n} entries in ${seconds.toFixed(1)} s (${Math.round(entries_per_s)}/s)\n`);
  // close() checkpointed the WAL into the file and removed it: the file alone is the store.
  if (await exists(`${building}-wal`)) throw new Error(`prefill left a WAL beside ${building}; not caching it`);
  await rename(building, file);
  return file;
}

/** Copies the cached prefill of n entries to target (replacing it and any WAL of it). */
export async function copyPrefilled(n: number, target: string, opts: PrefillOptions = {}): Promise<void> {
  const src = await cachedPrefill(n, opts);
  await mkdir(path.dirname(target), { recursive: true });
  for (const ext of ['-wal', '-shm']) await rm(target + ext, { force: true });
  await copyFile(src, target);
}
