/**
 * A store of n *valid* entries (real RSA signatures, real proofs at BENCH_POW_BITS, payloads
 * sealed to real recipients), for benchmarks where the receiving side verifies every entry
 * (sync, bootstrap). Signing runs at ~1,000/s per core, so a million take minutes: the file is
 * built once, in worker threads, and cached under .bench-cache/. Copies are opened with
 * openStore, which migrates them forward, so the cache outlives schema additions.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { copyFile, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import type { ValidEntry } from '../../src/entry/validate.js';
import { openSqliteStore as openStore } from '../../src/store/sqlite/open.js';
import { BENCH_POW_BITS } from './fixtures.js';
import { PREFILL_CACHE_DIR } from './prefill.js';

export interface ValidStoreOptions {
  tables?: number;
  recipients?: number;
  /** Plaintext bytes per entry; sealed, the payload is ~300 bytes more. */
  plaintextBytes?: number;
}

const DEFAULTS = { tables: 4, recipients: 8, plaintextBytes: 500 };
const CHUNK = 500;

interface WorkerJob {
  tablePems: string[];
  recipientPems: string[];
  plaintextBytes: number;
  bits: number;
}

interface WireValid {
  id: Uint8Array;
  tableFingerprint: Uint8Array;
  table: Uint8Array;
  to: Uint8Array;
  createdAt: number;
  payload: Uint8Array;
  signature: Uint8Array;
  proof: Uint8Array;
}

/** Worker: answers {offset, count} with that many entries, numbered from offset. */
async function workerMain(job: WorkerJob): Promise<void> {
  const { createPrivateKey, createPublicKey } = await import('node:crypto');
  const { createEntry, publicInfo } = await import('../../src/client/write.js');
  const { mintProof } = await import('../../src/pow/mint.js');
  const tables = job.tablePems.map((p) => createPrivateKey(p));
  const fingerprints = tables.map((t) => publicInfo(t).fingerprint);
  const recipients = job.recipientPems.map((p) => createPublicKey(p));
  const base = Date.now() - 86_400_000;
  parentPort!.on('message', async (m: { offset: number; count: number } | null) => {
    if (m === null) return parentPort!.close();
    const out: WireValid[] = [];
    for (let i = 0; i < m.count; i++) {
      const n = m.offset + i;
      const t = n % tables.length;
      const { entry, id } = await createEntry({
        tablePrivateKey: tables[t]!,
        recipientPublicKey: recipients[n % recipients.length]!,
        plaintext: randomBytes(job.plaintextBytes),
        createdAt: base + n,
        powBits: job.bits,
        mint: async (x, b) => mintProof(x, b),
      });
      out.push({ id, tableFingerprint: fingerprints[t]!, ...entry });
    }
    parentPort!.postMessage(out);
  });
}

if (!isMainThread && (workerData as { validStoreJob?: WorkerJob })?.validStoreJob) {
  await workerMain((workerData as { validStoreJob: WorkerJob }).validStoreJob);
}

function toValid(w: WireValid): ValidEntry {
  return {
    id: Buffer.from(w.id),
    tableFingerprint: Buffer.from(w.tableFingerprint),
    powValue: BENCH_POW_BITS,
    entry: {
      version: 1,
      table: Buffer.from(w.table),
      to: Buffer.from(w.to),
      createdAt: w.createdAt,
      payload: Buffer.from(w.payload),
      signature: Buffer.from(w.signature),
      proof: Buffer.from(w.proof),
    },
  };
}

async function buildValidStore(filename: string, n: number, o: Required<ValidStoreOptions>): Promise<void> {
  const pem = () => generateKeyPairSync('rsa', { modulusLength: 2048 });
  const job: WorkerJob = {
    tablePems: Array.from({ length: o.tables }, () => pem().privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()),
    recipientPems: Array.from({ length: o.recipients }, () => pem().publicKey.export({ type: 'spki', format: 'pem' }).toString()),
    plaintextBytes: o.plaintextBytes,
    bits: BENCH_POW_BITS,
  };
  // The keys beside the cache (benchmark keys, never real ones), so a benchmark can write more
  // entries to the same tables later.
  await writeFile(`${filename}.keys.json`, JSON.stringify({ tablePems: job.tablePems, recipientPems: job.recipientPems }), { mode: 0o600 });
  const store = await openStore({ filename, durability: 'normal', maxBatchEntries: 10_000 });
  const self = fileURLToPath(import.meta.url);
  const workers = Array.from({ length: availableParallelism() }, () => new Worker(self, { workerData: { validStoreJob: job } }));
  let next = 0;
  let done = 0;
  const t0 = performance.now();
  try {
    await Promise.all(
      workers.map(async (w) => {
        while (next < n) {
          const offset = next;
          const count = Math.min(CHUNK, n - offset);
          next += count;
          const batch = await new Promise<WireValid[]>((resolve, reject) => {
            const onError = (err: Error) => reject(err);
            w.once('error', onError);
            w.once('message', (m: WireValid[]) => {
              w.off('error', onError);
              resolve(m);
            });
            w.postMessage({ offset, count });
          });
          const outcomes = await store.insert(batch.map(toValid));
          if (outcomes.some((x) => x !== 'stored')) throw new Error('valid-store: duplicate id');
          done += count;
          if (done % 20_000 < CHUNK) {
            const rate = done / ((performance.now() - t0) / 1000);
            process.stderr.write(`valid-store: ${done}/${n} (${Math.round(rate)}/s)\n`);
          }
        }
        w.postMessage(null);
      }),
    );
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
    await store.close();
  }
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

/** Path of the cached store of n valid entries, built on first use. Copy it; never open it in place. */
export async function cachedValidStore(n: number, opts: ValidStoreOptions = {}): Promise<string> {
  const o = { ...DEFAULTS, ...opts };
  const file = path.join(PREFILL_CACHE_DIR, `valid-v1-n${n}-t${o.tables}-r${o.recipients}-p${o.plaintextBytes}-b${BENCH_POW_BITS}.sqlite`);
  if (await exists(file)) return file;
  await mkdir(PREFILL_CACHE_DIR, { recursive: true });
  const building = `${file}.building-${process.pid}`;
  await rm(building, { force: true });
  process.stderr.write(`valid-store: building ${path.basename(file)} (${n} signed entries; minutes per million)\n`);
  await buildValidStore(building, n, o);
  if (await exists(`${building}-wal`)) throw new Error(`valid-store left a WAL beside ${building}; not caching it`);
  await rename(`${building}.keys.json`, `${file}.keys.json`);
  await rename(building, file);
  return file;
}

/** The table and recipient keys (PEM) of a cached valid store built with its keys kept. */
export async function validStoreKeys(n: number, opts: ValidStoreOptions = {}): Promise<{ tablePems: string[]; recipientPems: string[] }> {
  const file = `${await cachedValidStore(n, opts)}.keys.json`;
  if (!(await exists(file))) throw new Error(`${file} is missing: delete the cached store beside it so that it is rebuilt with its keys`);
  return JSON.parse(await readFile(file, 'utf8')) as { tablePems: string[]; recipientPems: string[] };
}

/** Copies the cached valid store of n entries to target (replacing it and any WAL of it). */
export async function copyValidStore(n: number, target: string, opts: ValidStoreOptions = {}): Promise<void> {
  const src = await cachedValidStore(n, opts);
  await mkdir(path.dirname(target), { recursive: true });
  for (const ext of ['-wal', '-shm']) await rm(target + ext, { force: true });
  await copyFile(src, target);
}

// `node dist/scripts/bench/valid-store.js N` builds the cache ahead of a benchmark run.
if (isMainThread && process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const n = Number(process.argv[2] ?? 1_000_000);
  process.stdout.write(`${await cachedValidStore(n)}\n`);
}
