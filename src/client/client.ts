/**
 * P2pdbClient: an application's handle on one node. Everything secret happens here, in the
 * application's process: encrypting to the recipient, minting the proof on worker threads,
 * signing with the table key, and verifying and decrypting what the node returns. The node
 * only ever sees ciphertext, public keys and signatures.
 */
import type http from 'node:http';
import { availableParallelism } from 'node:os';
import type { KeyObject } from 'node:crypto';
import type { Entry, StoredEntryJson } from '../entry/types.js';
import { P2pdbError } from '../errors.js';
import { PublicKeyCache } from '../crypto/keys.js';
import { MintPool, type MintOptions, type MintProgress } from '../pow/mint-pool.js';
import { NodeApi, type GetFilters, type GetPage, type Hello, type PutResult } from './node-api.js';
import { openEntry, verifyStoredEntry, type VerifiedEntry } from './read.js';
import { subscribeEntries, type SubscribeFilters, type SubscribeOptions } from './subscribe.js';
import { agentFetch, routeFor } from './transport.js';
import { createEntry } from './write.js';

export interface ClientOptions {
  /** A SOCKS agent to tor (required for .onion URLs: peerAgent(socksPort)), or any http.Agent. */
  agent?: http.Agent;
  /** Per request (default 120 s: Tor is slow to build a first circuit). */
  timeoutMs?: number;
  /** Mint worker threads (default: every core). The pool starts on the first put. */
  mintThreads?: number;
}

export interface PutOptions {
  /** The table's private key: whoever holds it may write to the table. */
  table: KeyObject;
  /** The recipient's public (or private) key: only its private key can read the entry. */
  to: KeyObject;
  data: string | Uint8Array;
  /** Milliseconds since the epoch; now by default. */
  createdAt?: number;
  /** Proof-of-work bits; the node's /hello/ pow_bits by default. */
  powBits?: number;
  onProgress?: (progress: MintProgress) => void;
  /** Cancels minting (rejects with an AbortError); a request already sent completes. */
  signal?: AbortSignal;
}

export interface ReadOptions {
  /** Called for entries that fail verification (they are skipped). */
  onInvalid?: (json: unknown, error: P2pdbError) => void;
}

export type ClientSubscribeOptions = Omit<SubscribeOptions, 'agent'> & ReadOptions;

export class P2pdbClient {
  readonly api: NodeApi;
  readonly url: string;
  private readonly agent: http.Agent | undefined;
  private readonly mintThreads: number;
  private pool: MintPool | undefined;
  private helloCache: Promise<Hello> | undefined;
  private readonly keys = new PublicKeyCache(256);

  constructor(url: string, opts: ClientOptions = {}) {
    this.api = new NodeApi(url, {
      fetch: agentFetch(opts.agent),
      ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
    });
    this.url = this.api.baseUrl;
    routeFor(new URL(this.url), opts.agent); // an onion without a SOCKS agent fails here, not on first use
    this.agent = opts.agent;
    this.mintThreads = opts.mintThreads ?? availableParallelism();
  }

  /** What the node is: pow_bits, limits, tables, onion address. */
  hello(): Promise<Hello> {
    return this.api.hello();
  }

  /** A proof of work for an entry id on the client's worker threads, with progress and cancel. */
  mint(id: Uint8Array, bits: number, opts: MintOptions = {}): Promise<Buffer> {
    this.pool ??= new MintPool({ threads: this.mintThreads }).unref();
    return this.pool.mint(id, bits, opts);
  }

  /** Builds an entry (encrypt, mint, sign) without sending it. */
  async createEntry(opts: PutOptions): Promise<{ entry: Entry; id: string }> {
    let powBits = opts.powBits;
    if (powBits === undefined) {
      this.helloCache ??= this.hello().catch((e) => {
        this.helloCache = undefined;
        throw e;
      });
      powBits = (await this.helloCache).pow_bits;
    }
    const { entry, id } = await createEntry({
      tablePrivateKey: opts.table,
      recipientPublicKey: opts.to,
      plaintext: typeof opts.data === 'string' ? Buffer.from(opts.data, 'utf8') : opts.data,
      powBits,
      ...(opts.createdAt !== undefined ? { createdAt: opts.createdAt } : {}),
      mint: (entryId, bits) => this.mint(entryId, bits, { ...(opts.onProgress ? { onProgress: opts.onProgress } : {}), ...(opts.signal ? { signal: opts.signal } : {}) }),
    });
    return { entry, id: id.toString('hex') };
  }

  /** Encrypts `data` to `to`, mints, signs with `table` and stores it on the node. */
  async put(opts: PutOptions): Promise<PutResult> {
    const { entry } = await this.createEntry(opts);
    return this.api.put(entry);
  }

  /** Sends a ready entry (for example one made elsewhere). */
  putEntry(entry: Entry): Promise<PutResult> {
    return this.api.put(entry);
  }

  /** One page of /get/ (raw, unverified); continue with `after: page.next`. */
  getPage(filters: GetFilters): Promise<GetPage> {
    return this.api.get(filters);
  }

  /** Every page, following the cursor. */
  async *pages(filters: GetFilters): AsyncGenerator<GetPage> {
    let after = filters.after;
    for (;;) {
      const page = await this.api.get(after === undefined ? filters : { ...filters, after });
      yield page;
      if (page.next === null || page.entries.length === 0 || page.next === after) return;
      after = page.next;
    }
  }

  /** Every matching entry, verified (id and table signature), oldest first. */
  async *get(filters: GetFilters, opts: ReadOptions = {}): AsyncGenerator<VerifiedEntry> {
    for await (const page of this.pages(filters)) {
      for (const json of page.entries) {
        const v = this.verify(json, opts);
        if (v) yield v;
      }
    }
  }

  /**
   * Entries as the node commits them (from puts and peer sync alike), verified. Without
   * `after` only new entries come; `after: '0'` replays everything that matches first. Ends
   * when `signal` aborts; reconnects on its own (resuming by Last-Event-ID, no duplicates).
   */
  async *subscribe(filters: SubscribeFilters, opts: ClientSubscribeOptions = {}): AsyncGenerator<VerifiedEntry> {
    for await (const json of subscribeEntries(this.url, filters, { ...opts, ...(this.agent ? { agent: this.agent } : {}) })) {
      const v = this.verify(json, opts);
      if (v) yield v;
    }
  }

  /** Decrypts an entry addressed to `privateKey` (decrypt_failed otherwise). */
  open(entry: VerifiedEntry | Entry, privateKey: KeyObject): Buffer {
    return openEntry('entry' in entry ? entry.entry : entry, privateKey);
  }

  /** Stops the mint workers. The client stays usable for reads. */
  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    await pool?.close();
  }

  private verify(json: StoredEntryJson, opts: ReadOptions): VerifiedEntry | undefined {
    try {
      return verifyStoredEntry(json, { keys: this.keys });
    } catch (e) {
      if (!(e instanceof P2pdbError)) throw e;
      opts.onInvalid?.(json, e);
      return undefined;
    }
  }
}
