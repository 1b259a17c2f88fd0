/**
 * Ingest: the one path by which entries enter the store, for client puts and sync. Each item
 * is checked in full (entry/validate.ts) before anything is written; items that fail are
 * answered in their slot and never stored. A peer's sync answer is also matched against what
 * was asked for, in the same pass (check-body.ts checkPeerBody).
 */
import { PublicKeyCache } from '../crypto/keys.js';
import { isP2pdbError, P2pdbError } from '../errors.js';
import type { EntryPolicy, ValidEntry } from '../entry/validate.js';
import type { BodyKind } from './parse-body.js';
import type { EntryStore, InsertOutcome } from '../store/types.js';
import { toHex } from '../util/bytes.js';
import { InlineChecker, type BodyChecker } from './check-pool.js';
import { checkItem, claimedIdOf, unpackEntries, type CheckResult, type PeerMatch, type PeerRequest } from './check-body.js';

export type IngestResult =
  | { index: number; id: string; status: InsertOutcome }
  | { index: number; id?: string; error: { code: string; message: string } };

export interface IngestDeps {
  store: EntryStore;
  policy: EntryPolicy;
  /** Where request bodies are parsed and checked; inline when not given. */
  checker?: BodyChecker;
  now?: () => number;
}

export interface BodyOptions {
  kind: BodyKind;
  maxEntries: number;
}

/** A peer's sync answer after ingest: how it matched the request, and each matched, unskipped entry's outcome. */
export interface PeerIngest {
  match: PeerMatch;
  results: IngestResult[];
}

/** Called with the ids of a peer's valid entries just before they are stored. */
export type BeforeStore = (ids: Buffer[]) => void;

export class Ingestor {
  private readonly keys = new PublicKeyCache();
  private readonly now: () => number;
  private readonly checker: BodyChecker;

  constructor(private readonly deps: IngestDeps) {
    this.now = deps.now ?? Date.now;
    this.checker = deps.checker ?? new InlineChecker(deps.policy);
  }

  get policy(): EntryPolicy {
    return this.deps.policy;
  }

  /** Checks one parsed item in this thread; throws a P2pdbError naming the first check it fails. */
  check(item: unknown, urlId?: Buffer): ValidEntry {
    return checkItem(item, this.deps.policy, this.keys, this.now(), urlId);
  }

  /** One entry's body, for /put/:id: a refusal is thrown so the route answers with its status. */
  async ingestOneBody(raw: Buffer, kind: BodyKind, urlId: Buffer): Promise<{ id: string; status: InsertOutcome }> {
    const result = await this.checker.check({ raw, kind, urlId, maxEntries: 1, now: this.now() });
    if (result.fatal) throw new P2pdbError(result.fatal.code, result.fatal.message);
    const [error] = result.errors;
    if (error) throw new P2pdbError(error.code, error.message);
    const [only] = unpackEntries(result);
    const [status] = await this.deps.store.insert([only!.valid]);
    return { id: toHex(only!.valid.id), status: status! };
  }

  /** A batch body (JSON array or NDJSON), answered entry by entry. */
  async ingestBody(raw: Buffer, opts: BodyOptions): Promise<IngestResult[]> {
    const result = await this.checker.check({ raw, kind: opts.kind, maxEntries: opts.maxEntries, now: this.now() });
    if (result.fatal) throw new P2pdbError(result.fatal.code, result.fatal.message);
    return this.store(result);
  }

  /**
   * A peer's NDJSON answer to a sync fetch or range page: matched against `request`, checked
   * and stored in one pass over the body (each entry parsed and hashed once, off this thread
   * with a pool). Results are in the order of the matched, unskipped lines, and name their id.
   */
  async ingestPeerBody(raw: Buffer, request: PeerRequest, beforeStore?: BeforeStore): Promise<PeerIngest> {
    const result = await this.checker.check({ raw, kind: 'ndjson', maxEntries: Infinity, now: this.now(), peer: request });
    if (result.fatal || !result.peer) throw new P2pdbError('internal', result.fatal?.message ?? 'a peer body was checked as a put');
    return { match: result.peer, results: await this.store(result, beforeStore) };
  }

  /** Parsed items, checked in this thread (for in-process callers). */
  async ingest(items: unknown[]): Promise<IngestResult[]> {
    const results: IngestResult[] = new Array(items.length);
    const valid: ValidEntry[] = [];
    const slots: number[] = [];
    items.forEach((item, index) => {
      try {
        valid.push(this.check(item));
        slots.push(index);
      } catch (e) {
        if (!isP2pdbError(e)) throw e;
        results[index] = { index, ...claimedIdOf(item), error: e.toJSON() };
      }
    });
    await this.insertInto(results, valid, slots);
    return results;
  }

  private async store(result: CheckResult, beforeStore?: BeforeStore): Promise<IngestResult[]> {
    const results: IngestResult[] = new Array(result.count);
    for (const e of result.errors) {
      results[e.index] = { index: e.index, ...(e.id ? { id: e.id } : {}), error: { code: e.code, message: e.message } };
    }
    const unpacked = unpackEntries(result);
    if (beforeStore && unpacked.length > 0) beforeStore(unpacked.map((u) => u.valid.id));
    await this.insertInto(
      results,
      unpacked.map((u) => u.valid),
      unpacked.map((u) => u.index),
    );
    return results;
  }

  private async insertInto(results: IngestResult[], valid: ValidEntry[], slots: number[]): Promise<void> {
    if (valid.length === 0) return;
    const outcomes = await this.deps.store.insert(valid);
    for (let i = 0; i < valid.length; i++) {
      const index = slots[i]!;
      results[index] = { index, id: toHex(valid[i]!.id), status: outcomes[i]! };
    }
  }

  async close(): Promise<void> {
    await this.checker.close();
  }
}
