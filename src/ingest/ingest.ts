/**
 * Ingest: the one path by which entries enter the store, for client puts and (later) sync.
 * Each item is checked in full (validate.ts) before anything is written; items that fail
 * are answered in their slot and never stored.
 */
import { PublicKeyCache } from '../crypto/keys.js';
import { isP2pdbError, P2pdbError } from '../errors.js';
import { checkEntryContent, checkEntrySignature, type EntryPolicy, type ValidEntry } from '../entry/validate.js';
import { entryFromJson } from '../entry/wire.js';
import type { EntryStore, InsertOutcome } from '../store/types.js';
import { toHex } from '../util/bytes.js';

export type IngestResult =
  | { index: number; id: string; status: InsertOutcome }
  | { index: number; id?: string; error: { code: string; message: string } };

export interface IngestDeps {
  store: EntryStore;
  policy: EntryPolicy;
  keys?: PublicKeyCache;
  now?: () => number;
}

export class Ingestor {
  private readonly keys: PublicKeyCache;
  private readonly now: () => number;

  constructor(private readonly deps: IngestDeps) {
    this.keys = deps.keys ?? new PublicKeyCache();
    this.now = deps.now ?? Date.now;
  }

  get policy(): EntryPolicy {
    return this.deps.policy;
  }

  /** Checks one item; throws a P2pdbError naming the first check it fails. */
  check(item: unknown, urlId?: Buffer): ValidEntry {
    if (item instanceof P2pdbError) throw item;
    const { entry, claimedId } = entryFromJson(item, this.deps.policy);
    if (urlId && claimedId && !urlId.equals(claimedId)) throw new P2pdbError('id_mismatch', 'id in the URL and in the body differ');
    const valid = checkEntryContent(entry, this.deps.policy, this.now(), urlId ?? claimedId);
    checkEntrySignature(valid, this.keys);
    return valid;
  }

  /** One entry, for /put/:id: a refusal is thrown so the route answers with its status. */
  async ingestOne(item: unknown, urlId?: Buffer): Promise<{ id: string; status: InsertOutcome }> {
    const valid = this.check(item, urlId);
    const [status] = await this.deps.store.insert([valid]);
    return { id: toHex(valid.id), status: status! };
  }

  async ingest(items: unknown[], urlId?: Buffer): Promise<IngestResult[]> {
    const results: IngestResult[] = new Array(items.length);
    const valid: ValidEntry[] = [];
    const slots: number[] = [];
    for (let index = 0; index < items.length; index++) {
      try {
        valid.push(this.check(items[index], urlId));
        slots.push(index);
      } catch (e) {
        if (!isP2pdbError(e)) throw e;
        const claimed = (items[index] as { id?: unknown } | null)?.id;
        results[index] = {
          index,
          ...(typeof claimed === 'string' && /^[0-9a-f]{64}$/.test(claimed) ? { id: claimed } : {}),
          error: e.toJSON(),
        };
      }
    }
    if (valid.length > 0) {
      const outcomes = await this.deps.store.insert(valid);
      for (let i = 0; i < valid.length; i++) {
        const index = slots[i]!;
        results[index] = { index, id: toHex(valid[i]!.id), status: outcomes[i]! };
      }
    }
    return results;
  }
}
