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

/**
 * The most bytes one entry may take on the wire, in any route: the whole body of
 * /put/:id, one NDJSON line or one array item of a batch. Every valid entry fits, however
 * its encoder escapes: the payload's base64 is 4⌈n/3⌉ characters and no escape is longer
 * than 6 bytes (JSON's \u002B; a form's %2B is 3), so 8n (+16 for the rounding) covers the
 * payload; the other fields (key and signature of at most 1,024 bytes each, also as PEM,
 * the proof, hex, numbers, names) are under 5,000 characters, 30 KB at 6 bytes each, well
 * inside 64 KiB. What is left over is room for unknown fields; beyond it an entry is
 * refused the same way whichever route brought it.
 */
export function maxEntryBytes(maxPayloadBytes: number): number {
  return 8 * maxPayloadBytes + 64 * 1024;
}

function tooLarge(what: string, bytes: number, max: number): P2pdbError {
  return new P2pdbError('payload_too_large', `${what} is ${bytes} bytes; one entry takes at most ${max} (8 × max_payload_bytes + 64 KiB)`);
}

/**
 * Byte spans of the items of a JSON array that has already parsed. JSON's structural
 * characters are ASCII and UTF-8 never uses ASCII bytes inside a multi-byte character, so
 * scanning bytes is exact. Whitespace around an item is not part of it.
 */
export function arrayItemSpans(raw: Uint8Array): { start: number; end: number }[] {
  const spans: { start: number; end: number }[] = [];
  const isSpace = (b: number) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
  let i = 0;
  while (isSpace(raw[i]!)) i++;
  i++; // '['
  let depth = 0;
  let inString = false;
  let start = -1;
  let last = -1; // the last non-space byte of the current item
  for (; i < raw.length; i++) {
    const b = raw[i]!;
    if (inString) {
      if (b === 0x5c) i++; // a backslash escapes the next byte (a \u escape's digits are plain)
      else if (b === 0x22) inString = false;
      last = i;
      continue;
    }
    if (isSpace(b)) continue;
    if (depth === 0 && (b === 0x2c || b === 0x5d)) {
      if (start >= 0) spans.push({ start, end: last + 1 });
      start = -1;
      if (b === 0x5d) break;
      continue;
    }
    if (start < 0) start = i;
    if (b === 0x22) inString = true;
    else if (b === 0x7b || b === 0x5b) depth++;
    else if (b === 0x7d || b === 0x5d) depth--;
    last = i;
  }
  return spans;
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

/**
 * A list of entries (for /put/): a JSON array, or NDJSON with one entry per line. An item
 * over maxItemBytes is answered in its slot as payload_too_large, as /put/:id answers a body
 * over the same bound, so an entry is accepted or refused alike by both routes.
 */
export function parseBatch(raw: Buffer, kind: BodyKind, maxEntries: number, maxItemBytes = Infinity): unknown[] {
  let items: unknown[];
  if (kind === 'form') fail('unsupported_media_type', 'a batch is sent as a JSON array or NDJSON');
  if (kind === 'json') {
    const parsed = parseJsonText(raw.toString('utf8'), 'body');
    if (!Array.isArray(parsed)) fail('malformed', 'a batch must be a JSON array of entries');
    items = parsed;
    // Only a body over the bound can hold an item over it.
    if (raw.length > maxItemBytes && items.length <= maxEntries) {
      arrayItemSpans(raw).forEach(({ start, end }, i) => {
        if (end - start > maxItemBytes) items[i] = tooLarge(`item ${i}`, end - start, maxItemBytes);
      });
    }
  } else {
    items = [];
    const lines = raw.toString('utf8').split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!.trim();
      if (line === '') continue;
      // A UTF-16 unit is at most 3 UTF-8 bytes: only a long line needs counting.
      if (line.length * 3 > maxItemBytes) {
        const bytes = Buffer.byteLength(line);
        if (bytes > maxItemBytes) {
          items.push(tooLarge(`line ${i + 1}`, bytes, maxItemBytes));
          if (items.length > maxEntries) break;
          continue;
        }
      }
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
