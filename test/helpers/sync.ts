/** Helpers for the sync tests: loopback transport (tests only), entry batches, id sets. */
import type http from 'node:http';
import type { EntryStore } from '../../src/store/types.js';
import type { RawRequester } from '../../src/sync/transport.js';
import { makeEntry, type MadeEntry, type TestKey } from './entries.js';

/**
 * A RawRequester over plain loopback HTTP. Tests only: the node's sole requester goes through
 * tor (onionRequester); this lets the session logic be tested against a real node quickly.
 */
export function loopbackRequester(baseUrl: string): RawRequester {
  const origin = new URL(baseUrl);
  if (origin.hostname !== '127.0.0.1') throw new Error('loopback only');
  return async (req) => {
    const res = await fetch(new URL(req.path, origin), {
      method: req.method,
      headers: {
        ...(req.accept ? { accept: req.accept } : {}),
        ...(req.body ? { 'content-type': req.contentType ?? 'application/octet-stream' } : {}),
      },
      ...(req.body ? { body: req.body } : {}),
      ...(req.signal ? { signal: req.signal } : {}),
    });
    const body = Buffer.from(await res.arrayBuffer());
    const headers: http.IncomingHttpHeaders = {};
    res.headers.forEach((v, k) => (headers[k] = v));
    return { status: res.status, headers, body };
  };
}

export async function makeEntries(n: number, table: TestKey, to: TestKey, label: string, bits = 12): Promise<MadeEntry[]> {
  const out: MadeEntry[] = [];
  for (let i = 0; i < n; i++) out.push(await makeEntry({ table, to, text: `${label} ${i}`, bits }));
  return out;
}

export function ndjsonOf(entries: readonly MadeEntry[]): string {
  return entries.map((e) => JSON.stringify(e.json)).join('\n') + '\n';
}

/** POST /put/ as NDJSON; returns the parsed answer. */
export async function putAll(url: string, entries: readonly MadeEntry[]): Promise<{ stored: number; duplicates: number; rejected: number }> {
  const res = await fetch(`${url}/put/`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: ndjsonOf(entries) });
  const body = (await res.json()) as { stored: number; duplicates: number; rejected: number };
  if (res.status !== 200) throw new Error(`put answered ${res.status}: ${JSON.stringify(body)}`);
  return body;
}

export function sortedHex(ids: Iterable<Buffer | string>): string[] {
  return [...ids].map((i) => (typeof i === 'string' ? i : i.toString('hex'))).sort();
}

/** Every id a store holds, sorted hex (for comparing nodes). */
export async function allIds(store: Pick<EntryStore, 'query'>): Promise<string[]> {
  const ids: string[] = [];
  let after = 0;
  for (;;) {
    const page = await store.query({ afterSeq: after, limit: 1000 });
    ids.push(...page.entries.map((e) => e.id.toString('hex')));
    if (page.nextAfterSeq === null) break;
    after = page.nextAfterSeq;
  }
  return ids.sort();
}
