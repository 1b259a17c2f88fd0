/**
 * Valid, fully signed entries for benchmarks, made on every core and cached under
 * .bench-cache/ (signing runs at about 1,000/s per core, so they are made once).
 * Benchmark nodes require few proof bits: checking a proof costs 16 hashes whatever its
 * value, so verification cost is the same as at 21 bits while minting stays instant.
 */
import { generateKeyPairSync, createPrivateKey, createPublicKey } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import type { EntryJson } from '../../src/entry/types.js';

export const BENCH_POW_BITS = 8;
export const CACHE_DIR = path.resolve('.bench-cache');

interface Job {
  tables: string[];
  recipients: string[];
  count: number;
  payloadBytes: number;
  bits: number;
  offset: number;
}

export interface FixtureSet {
  entries: EntryJson[];
  tablePems: string[];
}

async function makeSome(job: Job): Promise<EntryJson[]> {
  const { createEntry } = await import('../../src/client/write.js');
  const { mintProof } = await import('../../src/pow/mint.js');
  const { entryToJson } = await import('../../src/entry/wire.js');
  const tables = job.tables.map((p) => createPrivateKey(p));
  const recipients = job.recipients.map((p) => createPublicKey(p));
  const out: EntryJson[] = [];
  const base = Date.now() - 3_600_000;
  for (let i = 0; i < job.count; i++) {
    const n = job.offset + i;
    const { entry, id } = await createEntry({
      tablePrivateKey: tables[n % tables.length]!,
      recipientPublicKey: recipients[n % recipients.length]!,
      plaintext: randomBytes(job.payloadBytes),
      createdAt: base + n,
      powBits: job.bits,
      mint: async (x, b) => mintProof(x, b),
    });
    out.push(entryToJson(entry, id));
  }
  return out;
}

if (!isMainThread && (workerData as { fixtureJob?: Job })?.fixtureJob) {
  const entries = await makeSome((workerData as { fixtureJob: Job }).fixtureJob);
  parentPort!.postMessage(entries);
}

/** n signed entries over `tableCount` tables and `recipientCount` recipients; cached by parameters. */
export async function benchEntries(n: number, opts: { tableCount?: number; recipientCount?: number; payloadBytes?: number } = {}): Promise<FixtureSet> {
  const tableCount = opts.tableCount ?? 4;
  const recipientCount = opts.recipientCount ?? 8;
  const payloadBytes = opts.payloadBytes ?? 500; // → an envelope of about 800 bytes
  const file = path.join(CACHE_DIR, `entries-v1-${n}-${tableCount}-${recipientCount}-${payloadBytes}-${BENCH_POW_BITS}.json`);
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as FixtureSet;

  const pem = () => generateKeyPairSync('rsa', { modulusLength: 2048 });
  const tableKeys = Array.from({ length: tableCount }, pem);
  const recipientKeys = Array.from({ length: recipientCount }, pem);
  const tables = tableKeys.map((k) => k.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
  const recipients = recipientKeys.map((k) => k.publicKey.export({ type: 'spki', format: 'pem' }).toString());
  const threads = availableParallelism();
  const per = Math.ceil(n / threads);
  const self = fileURLToPath(import.meta.url);
  const parts = await Promise.all(
    Array.from({ length: threads }, (_, t) => {
      const count = Math.max(0, Math.min(per, n - t * per));
      const job: Job = { tables, recipients, count, payloadBytes, bits: BENCH_POW_BITS, offset: t * per };
      return new Promise<EntryJson[]>((resolve, reject) => {
        const w = new Worker(self, { workerData: { fixtureJob: job } });
        w.once('message', resolve);
        w.once('error', reject);
      });
    }),
  );
  const set: FixtureSet = { entries: parts.flat(), tablePems: tables };
  mkdirSync(CACHE_DIR, { recursive: true });
  writeFileSync(file + '.tmp', JSON.stringify(set));
  renameSync(file + '.tmp', file);
  return set;
}
