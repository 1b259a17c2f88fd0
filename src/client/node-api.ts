/**
 * A small HTTP client for one node. The node's error codes come back as P2pdbError with the
 * same code; a node that cannot be reached is node_unreachable, naming the URL.
 */
import { entryId } from '../entry/canonical.js';
import type { HelloJson } from '../entry/json.js';
import type { Entry, StoredEntryJson } from '../entry/types.js';
import { entryToJson } from '../entry/wire.js';
import { P2pdbError, fail, httpStatusOf, type ErrorCode } from '../errors.js';
import { toHex } from '../util/bytes.js';

export const DEFAULT_NODE_URL = 'http://127.0.0.1:8733';

/** A node's /hello/ answer (the wire type the node's route declares too). */
export type Hello = HelloJson;

export interface PutResult {
  status: 'stored' | 'duplicate';
  id: string;
}

export type BatchItemResult =
  | { index: number; id: string; status: 'stored' | 'duplicate' }
  | { index: number; id?: string; error: { code: string; message: string } };

export interface BatchResult {
  results: BatchItemResult[];
  stored: number;
  duplicates: number;
  rejected: number;
}

export interface GetFilters {
  secondsSince?: number;
  /** Cursor from a previous page's `next`. */
  after?: string;
  /** Fingerprints, lower-case hex. */
  tables?: string[];
  recipients?: string[];
  ids?: string[];
  /** Page size (the node caps it). */
  limit?: number;
}

export interface GetPage {
  entries: StoredEntryJson[];
  next: string | null;
}

export type FetchFunction = typeof fetch;

export interface NodeApiOptions {
  fetch?: FetchFunction;
  /** Per request; slow links (Tor) need room, a dead one should not hang a command forever. */
  timeoutMs?: number;
}

const KNOWN_CODES = new Set(Object.keys(httpStatusOf));

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export class NodeApi {
  readonly baseUrl: string;
  private readonly fetchFn: FetchFunction;
  private readonly timeoutMs: number;

  constructor(baseUrl: string, opts: NodeApiOptions = {}) {
    let url: URL;
    try {
      url = new URL(baseUrl);
    } catch {
      fail('bad_request', `node URL ${JSON.stringify(baseUrl)} is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      fail('bad_request', `node URL ${baseUrl} must start with http:// or https://`);
    }
    // The global fetch would hand an onion name to the local resolver: an onion needs a fetch
    // that goes through tor (agentFetch with a socks5h agent).
    if (url.hostname.endsWith('.onion') && (opts.fetch === undefined || opts.fetch === globalThis.fetch)) {
      fail('config_invalid', `${url.host} is an onion address: reach it through tor's SocksPort (agentFetch(socksAgent(port)))`);
    }
    this.baseUrl = url.href.replace(/\/+$/, '');
    this.fetchFn = opts.fetch ?? fetch;
    this.timeoutMs = opts.timeoutMs ?? 120_000;
  }

  async hello(): Promise<Hello> {
    const body = await this.request('GET', '/hello/');
    if (!isObject(body) || typeof body.pow_bits !== 'number' || !isObject(body.limits)) {
      fail('malformed', `${this.baseUrl} did not answer /hello/ like a p2pdb node`);
    }
    return body as unknown as Hello;
  }

  /** One entry through /put/:id; the id is recomputed from the content, never taken on trust. */
  async put(entry: Entry): Promise<PutResult> {
    const id = entryId(entry);
    const body = await this.request('POST', `/put/${toHex(id)}`, entryToJson(entry, id));
    if (!isObject(body) || (body.status !== 'stored' && body.status !== 'duplicate') || typeof body.id !== 'string') {
      fail('malformed', `${this.baseUrl} answered /put/ with an unexpected body`);
    }
    return { status: body.status, id: body.id };
  }

  async putBatch(entries: Entry[]): Promise<BatchResult> {
    const body = await this.request('POST', '/put/', entries.map((e) => entryToJson(e)));
    return this.batchResult(body);
  }

  async get(filters: GetFilters): Promise<GetPage> {
    const q = new URLSearchParams();
    if (filters.secondsSince !== undefined) q.set('seconds_since', String(Math.max(0, Math.floor(filters.secondsSince))));
    if (filters.after !== undefined) q.set('after', filters.after);
    if (filters.tables?.length) q.set('tables', filters.tables.join(','));
    if (filters.recipients?.length) q.set('recipients', filters.recipients.join(','));
    if (filters.ids?.length) q.set('ids', filters.ids.join(','));
    if (filters.limit !== undefined) q.set('limit', String(filters.limit));
    const body = await this.request('GET', `/get/?${q.toString()}`);
    if (!isObject(body) || !Array.isArray(body.entries) || (body.next !== null && typeof body.next !== 'string')) {
      fail('malformed', `${this.baseUrl} answered /get/ with an unexpected body`);
    }
    return { entries: body.entries as StoredEntryJson[], next: body.next as string | null };
  }

  /** Every matching entry, following `next` page by page. */
  async *getAll(filters: GetFilters): AsyncGenerator<StoredEntryJson> {
    let after = filters.after;
    for (;;) {
      const page = await this.get(after === undefined ? filters : { ...filters, after });
      yield* page.entries;
      if (page.next === null || page.entries.length === 0 || page.next === after) return;
      after = page.next;
    }
  }

  private batchResult(body: unknown): BatchResult {
    if (!isObject(body) || !Array.isArray(body.results)) {
      fail('malformed', `${this.baseUrl} answered /put/ with an unexpected body`);
    }
    return body as unknown as BatchResult;
  }

  private nodeError(code: unknown, message: unknown): P2pdbError {
    const text = typeof message === 'string' ? message : 'the node refused the request';
    if (typeof code === 'string' && KNOWN_CODES.has(code)) return new P2pdbError(code as ErrorCode, text);
    // A code this client does not know yet: keep it visible in the message.
    return new P2pdbError('internal', `node error ${String(code)}: ${text}`);
  }

  private async request(method: 'GET' | 'POST', path: string, payload?: unknown): Promise<unknown> {
    const url = this.baseUrl + path;
    let res: Response;
    try {
      res = await this.fetchFn(url, {
        method,
        headers: payload === undefined ? { accept: 'application/json' } : { accept: 'application/json', 'content-type': 'application/json' },
        ...(payload === undefined ? {} : { body: JSON.stringify(payload) }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (e) {
      throw unreachable(this.baseUrl, e);
    }
    let text: string;
    try {
      text = await res.text();
    } catch (e) {
      throw unreachable(this.baseUrl, e);
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      fail('malformed', `${this.baseUrl} answered ${method} ${path.split('?')[0]} with HTTP ${res.status} and a body that is not JSON: is it a p2pdb node?`);
    }
    if (!res.ok) {
      const err = isObject(body) && isObject(body.error) ? body.error : undefined;
      if (err) throw this.nodeError(err.code, err.message);
      fail('malformed', `${this.baseUrl} answered ${method} ${path.split('?')[0]} with HTTP ${res.status} and no p2pdb error`);
    }
    return body;
  }
}

function unreachable(baseUrl: string, e: unknown): P2pdbError {
  const err = e as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  const why =
    err?.name === 'TimeoutError'
      ? 'it did not answer in time'
      : err?.cause?.code ?? err?.cause?.message ?? err?.message ?? String(e);
  return new P2pdbError('node_unreachable', `cannot reach the node at ${baseUrl} (${why})`);
}
