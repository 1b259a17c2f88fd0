/**
 * Parsing request bodies by media type: one entry (JSON or the seed's form encoding) or a
 * batch (JSON array or NDJSON). Pure, so it runs in verification workers too.
 */
import { fail, P2pdbError } from '../errors.js';

export type BodyKind = 'json' | 'ndjson' | 'form';

export function bodyKind(contentType: string | undefined): BodyKind {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (type === 'application/json' || type === '') return 'json';
  if (type === 'application/x-ndjson' || type === 'application/ndjson' || type === 'application/jsonl') return 'ndjson';
  if (type === 'application/x-www-form-urlencoded') return 'form';
  fail('unsupported_media_type', `content type ${type} is not accepted: use application/json, application/x-ndjson or application/x-www-form-urlencoded`);
}

function parseJsonText(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    fail('malformed', `${what} is not valid JSON`);
  }
}

/** A form body (the seed's encoding) as a plain object; numeric fields become numbers. */
export function parseForm(raw: Buffer): Record<string, unknown> {
  const params = new URLSearchParams(raw.toString('utf8'));
  const out: Record<string, unknown> = {};
  for (const [k, v] of params) out[k] = v;
  for (const k of ['v', 'created_at']) {
    if (typeof out[k] === 'string' && /^\d{1,16}$/.test(out[k] as string)) out[k] = Number(out[k]);
  }
  return out;
}

/** One entry object (for /put/:id). */
export function parseSingle(raw: Buffer, kind: BodyKind): unknown {
  if (kind === 'form') return parseForm(raw);
  if (kind === 'ndjson') fail('unsupported_media_type', 'a single entry is sent as application/json');
  return parseJsonText(raw.toString('utf8'), 'body');
}

/** A list of entries (for /put/): a JSON array, or NDJSON with one entry per line. */
export function parseBatch(raw: Buffer, kind: BodyKind, maxEntries: number): unknown[] {
  let items: unknown[];
  if (kind === 'form') fail('unsupported_media_type', 'a batch is sent as a JSON array or NDJSON');
  if (kind === 'json') {
    const parsed = parseJsonText(raw.toString('utf8'), 'body');
    if (!Array.isArray(parsed)) fail('malformed', 'a batch must be a JSON array of entries');
    items = parsed;
  } else {
    items = [];
    const lines = raw.toString('utf8').split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!.trim();
      if (line === '') continue;
      // A bad line spoils only itself; it is answered in its slot like any invalid entry.
      try {
        items.push(JSON.parse(line));
      } catch {
        items.push(new P2pdbError('malformed', `line ${i + 1} is not valid JSON`));
      }
      if (items.length > maxEntries) break;
    }
  }
  if (items.length > maxEntries) fail('batch_too_large', `a batch holds at most ${maxEntries} entries`);
  return items;
}
