/**
 * The machine's verification ceiling on one core, measured with the node's own functions:
 * RSA-PSS verifications per second with a cached key, proof-of-work cluster checks per second,
 * and the combination (one of each per entry).
 */
import { PublicKeyCache, parseWireSpki } from '../../src/crypto/keys.js';
import { verifyPss } from '../../src/crypto/signature.js';
import { checkEntryContent, checkEntrySignature, type EntryPolicy } from '../../src/entry/validate.js';
import { entryFromJson } from '../../src/entry/wire.js';
import { proofValue } from '../../src/pow/cluster.js';
import { BENCH_POW_BITS, benchEntries } from './fixtures.js';
import { round } from './load.js';

function rate(seconds: number, fn: (i: number) => void): number {
  let n = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  while (performance.now() < end) {
    for (let k = 0; k < 100; k++) fn(n++);
  }
  return n / ((performance.now() - t0) / 1000);
}

export async function benchCeiling(opts: { seconds?: number } = {}): Promise<object[]> {
  const seconds = opts.seconds ?? 3;
  const { entries } = await benchEntries(2000);
  const parsed = entries.map((e) => entryFromJson(e, { maxPayloadBytes: 65536 }));
  const policy: EntryPolicy = { allowedTables: '*', powBits: BENCH_POW_BITS, maxPayloadBytes: 65536, maxFutureSkewMs: 300_000 };
  const valid = parsed.map((p) => checkEntryContent(p.entry, policy, Date.now()));
  const keys = valid.map((v) => parseWireSpki(v.entry.table).key);

  const pss = rate(seconds, (i) => {
    const k = i % valid.length;
    if (!verifyPss(keys[k]!, valid[k]!.id, valid[k]!.entry.signature)) throw new Error('bad fixture');
  });
  const cluster = rate(seconds, (i) => {
    const v = valid[i % valid.length]!;
    if (proofValue(v.id, v.entry.proof) < BENCH_POW_BITS) throw new Error('bad fixture');
  });
  const cache = new PublicKeyCache();
  const full = rate(seconds, (i) => {
    const { entry } = entryFromJson(entries[i % entries.length], policy);
    checkEntrySignature(checkEntryContent(entry, policy, Date.now()), cache);
  });
  const ceiling = 1 / (1 / pss + 1 / cluster);
  return [
    {
      bench: 'ceiling',
      cores: 1,
      rsa_bits: 2048,
      pss_verify_per_s: round(pss),
      cluster_verify_per_s: round(cluster),
      ceiling_entries_per_s: round(ceiling),
      full_check_per_s: round(full),
      note: 'ceiling = 1/(1/pss + 1/cluster); full_check adds JSON decoding and the id hash',
    },
  ];
}

if (process.argv[1]?.endsWith('ceiling.js')) for (const r of await benchCeiling()) console.log(JSON.stringify(r));
