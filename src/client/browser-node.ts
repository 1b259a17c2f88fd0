/**
 * Talking to a node from a browser: fetch for /hello/, /put/ and /get/, EventSource for
 * /subscribe/ (docs/CLIENT contract: one `entry` event per stored entry, `id:` = seq, resumable by
 * Last-Event-ID, which EventSource resends by itself on reconnect).
 * The node's error codes come back as P2pdbError with the same code.
 */
import { P2pdbError, httpStatusOf, type ErrorCode } from '../errors.js';
import type { HelloJson } from '../entry/json.js';
import type { StoredWireEntry, WireEntry } from './browser-entry.js';

export interface BrowserFilters {
  tables?: string[];
  recipients?: string[];
  ids?: string[];
  after?: string;
  secondsSince?: number;
  limit?: number;
}

/** A node's /hello/ answer (the wire type the node's route declares too). */
export type NodeHello = HelloJson;

const KNOWN = new Set(Object.keys(httpStatusOf));

export function filterQuery(f: BrowserFilters): string {
  const q = new URLSearchParams();
  if (f.tables?.length) q.set('tables', f.tables.join(','));
  if (f.recipients?.length) q.set('recipients', f.recipients.join(','));
  if (f.ids?.length) q.set('ids', f.ids.join(','));
  if (f.after !== undefined) q.set('after', f.after);
  if (f.secondsSince !== undefined) q.set('seconds_since', String(f.secondsSince));
  if (f.limit !== undefined) q.set('limit', String(f.limit));
  return q.toString();
}

async function answer<T>(res: { ok: boolean; status: number; json(): Promise<unknown> }): Promise<T> {
  let body: unknown;
  try {
    body = await res.json();
  } catch {
    throw new P2pdbError('internal', `the node answered ${res.status} without JSON`);
  }
  if (!res.ok) {
    const err = (body as { error?: { code?: string; message?: string } } | null)?.error;
    const code = (err?.code && KNOWN.has(err.code) ? err.code : 'internal') as ErrorCode;
    throw new P2pdbError(code, err?.message ?? `the node answered ${res.status}`);
  }
  return body as T;
}

/** A node at `base` ('' for the page's own origin). */
export class BrowserNode {
  constructor(readonly base = '') {}

  async hello(): Promise<NodeHello> {
    return answer<NodeHello>(await fetch(`${this.base}/hello/`, { credentials: 'omit' }));
  }

  async put(entry: WireEntry & { id: string }): Promise<{ status: 'stored' | 'duplicate'; id: string }> {
    const res = await fetch(`${this.base}/put/${entry.id}`, {
      method: 'POST',
      credentials: 'omit',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(entry),
    });
    return answer(res);
  }

  async get(filters: BrowserFilters): Promise<{ entries: StoredWireEntry[]; next: string | null }> {
    return answer(await fetch(`${this.base}/get/?${filterQuery(filters)}`, { credentials: 'omit' }));
  }

  /**
   * Live entries: replays what is stored after `after` ('0': everything), then follows. The
   * returned function closes the stream. `onState` sees 'open' and 'reconnecting'.
   */
  subscribe(
    filters: BrowserFilters,
    onEntry: (entry: StoredWireEntry) => void,
    onState?: (state: 'open' | 'reconnecting') => void,
  ): () => void {
    const Source = (globalThis as unknown as { EventSource?: EventSourceCtor }).EventSource;
    if (!Source) throw new P2pdbError('internal', 'this browser has no EventSource');
    const source = new Source(`${this.base}/subscribe/?${filterQuery(filters)}`);
    source.addEventListener('entry', (ev) => {
      try {
        onEntry(JSON.parse((ev as { data: string }).data) as StoredWireEntry);
      } catch {
        // One unreadable event must not end the stream; the entry is simply not shown.
      }
    });
    source.onopen = () => onState?.('open');
    source.onerror = () => onState?.('reconnecting');
    return () => source.close();
  }
}

interface EventSourceLike {
  addEventListener(type: string, listener: (ev: unknown) => void): void;
  onopen: ((ev: unknown) => unknown) | null;
  onerror: ((ev: unknown) => unknown) | null;
  close(): void;
}
type EventSourceCtor = new (url: string) => EventSourceLike;
