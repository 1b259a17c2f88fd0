/**
 * Binary sync messages (docs/PROTOCOL.md §9.4), version byte first. Decoding is strict and
 * bounded: every length is checked before it is read, varints must be minimal, lists are
 * capped, ids must be sorted and inside their node, and nothing may trail the message.
 * Any violation throws P2pdbError('sync_malformed').
 */
import { fail } from '../errors.js';
import { FINGERPRINT_BYTES } from './fingerprint.js';
import { idHasPrefix, MAX_DEPTH } from './prefix.js';

export const SYNC_VERSION = 1;
export const MSG_REQUEST = 0x01;
export const MSG_REPLY = 0x02;

export const ITEM = { summary: 1, children: 2, ids: 3, none: 4, diff: 5 } as const;
export const SECTION = { table: 1, refused: 2, extra: 3 } as const;

export const LIMITS = {
  /** Largest message either side accepts. */
  maxMessageBytes: 256 * 1024,
  /** Tables listed in one request. */
  maxTables: 1024,
  /** Items in one message, all tables together. */
  maxItems: 4096,
  /** Ids in one IDS item (and so in the list a DIFF answers). */
  maxIdsPerList: 64,
  /** Ids the peer lacks, in one DIFF. */
  maxDiffIds: 4096,
  /** Ranges in one DIFF. */
  maxDiffRanges: 4096,
  /** Tables the server names that the client did not list. */
  maxExtraTables: 1024,
  /** Largest count on the wire (2^48). */
  maxCount: 2 ** 48,
} as const;

export interface Summary {
  count: number;
  fingerprint: Buffer;
}

export type Item =
  | { kind: 'summary'; prefix: string; count: number; fingerprint: Buffer }
  | { kind: 'children'; prefix: string; children: (Summary | null)[] }
  | { kind: 'ids'; prefix: string; ids: Buffer[] }
  | { kind: 'none'; prefix: string }
  | {
      kind: 'diff';
      prefix: string;
      /** One flag per id of the IDS item answered: true when the sender of the DIFF lacks it. */
      lacks: boolean[];
      /** Ids the receiver of the DIFF lacks. */
      need: Buffer[];
      /** Sub-nodes of which the receiver holds nothing, with the sender's count. */
      ranges: { prefix: string; count: number }[];
    };

export interface RequestTable {
  table: Buffer;
  items: Item[];
}
export interface SyncRequest {
  allTables: boolean;
  tables: RequestTable[];
}

export type Section =
  | { kind: 'table'; index: number; answered: number; items: Item[] }
  | { kind: 'refused'; index: number }
  | { kind: 'extra'; table: Buffer; count: number };
export interface SyncReply {
  sections: Section[];
}

// ---------- writing ----------

export class Writer {
  private buf = Buffer.allocUnsafe(256);
  length = 0;

  private ensure(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }
  u8(v: number): void {
    this.ensure(1);
    this.buf[this.length++] = v;
  }
  u16(v: number): void {
    this.ensure(2);
    this.buf.writeUInt16BE(v, this.length);
    this.length += 2;
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  varint(n: number): void {
    do {
      let b = n % 128;
      n = Math.floor(n / 128);
      if (n > 0) b |= 0x80;
      this.u8(b);
    } while (n > 0);
  }
  prefix(p: string): void {
    this.u8(p.length);
    if (p.length > 0) this.bytes(Buffer.from(p.length & 1 ? p + '0' : p, 'hex'));
  }
  /** An id inside a node of `depth` nibbles: the whole bytes of the prefix are implied. */
  idSuffix(id: Uint8Array, depth: number): void {
    this.bytes(id.subarray(depth >> 1));
  }
  result(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.length));
  }
}

export function writeItem(w: Writer, item: Item): void {
  w.u8(ITEM[item.kind]);
  w.prefix(item.prefix);
  switch (item.kind) {
    case 'summary':
      w.varint(item.count);
      w.bytes(item.fingerprint);
      break;
    case 'children': {
      let mask = 0;
      item.children.forEach((c, i) => {
        if (c) mask |= 1 << i;
      });
      w.u16(mask);
      for (const c of item.children) {
        if (!c) continue;
        w.varint(c.count);
        w.bytes(c.fingerprint);
      }
      break;
    }
    case 'ids':
      w.varint(item.ids.length);
      for (const id of item.ids) w.idSuffix(id, item.prefix.length);
      break;
    case 'none':
      break;
    case 'diff': {
      w.varint(item.lacks.length);
      const bits = Buffer.alloc((item.lacks.length + 7) >> 3);
      item.lacks.forEach((l, j) => {
        if (l) bits[j >> 3] = bits[j >> 3]! | (0x80 >> (j & 7));
      });
      w.bytes(bits);
      w.varint(item.need.length);
      for (const id of item.need) w.idSuffix(id, item.prefix.length);
      w.varint(item.ranges.length);
      for (const r of item.ranges) {
        w.prefix(r.prefix);
        w.varint(r.count);
      }
      break;
    }
  }
}

export function itemBytes(item: Item): Buffer {
  const w = new Writer();
  writeItem(w, item);
  return w.result();
}

export function encodeRequest(req: SyncRequest): Buffer {
  const w = new Writer();
  w.u8(SYNC_VERSION);
  w.u8(MSG_REQUEST);
  w.u8(req.allTables ? 1 : 0);
  w.varint(req.tables.length);
  for (const t of req.tables) {
    w.bytes(t.table);
    w.varint(t.items.length);
    for (const item of t.items) writeItem(w, item);
  }
  return w.result();
}

/** Header of a reply; sections are appended as already-encoded bytes (the server sizes them one by one). */
export function replyHeader(sections: number): Buffer {
  const w = new Writer();
  w.u8(SYNC_VERSION);
  w.u8(MSG_REPLY);
  w.varint(sections);
  return w.result();
}

export function sectionBytes(s: Section, encodedItems?: Buffer[]): Buffer {
  const w = new Writer();
  w.u8(SECTION[s.kind]);
  if (s.kind === 'table') {
    w.varint(s.index);
    w.varint(s.answered);
    const items = encodedItems ?? s.items.map(itemBytes);
    w.varint(items.length);
    for (const b of items) w.bytes(b);
  } else if (s.kind === 'refused') {
    w.varint(s.index);
  } else {
    w.bytes(s.table);
    w.varint(s.count);
  }
  return w.result();
}

export function encodeReply(reply: SyncReply): Buffer {
  return Buffer.concat([replyHeader(reply.sections.length), ...reply.sections.map((s) => sectionBytes(s))]);
}

// ---------- reading ----------

function malformed(why: string): never {
  fail('sync_malformed', `malformed sync message: ${why}`);
}

class Reader {
  pos = 0;
  items = 0;
  constructor(private readonly b: Uint8Array) {}

  need(n: number): void {
    if (this.pos + n > this.b.length) malformed('truncated');
  }
  u8(): number {
    this.need(1);
    return this.b[this.pos++]!;
  }
  u16(): number {
    this.need(2);
    const v = (this.b[this.pos]! << 8) | this.b[this.pos + 1]!;
    this.pos += 2;
    return v;
  }
  bytes(n: number): Buffer {
    this.need(n);
    const out = Buffer.from(this.b.subarray(this.pos, this.pos + n)); // owned copy
    this.pos += n;
    return out;
  }
  varint(max: number, what: string): number {
    let n = 0;
    let scale = 1;
    for (let i = 0; ; i++) {
      if (i >= 7) malformed(`${what}: varint too long`);
      const b = this.u8();
      n += (b & 0x7f) * scale;
      scale *= 128;
      if ((b & 0x80) === 0) {
        if (b === 0 && i > 0) malformed(`${what}: varint not minimal`);
        break;
      }
    }
    if (n > max) malformed(`${what}: ${n} is more than ${max}`);
    return n;
  }
  prefix(): string {
    const n = this.u8();
    if (n > MAX_DEPTH) malformed('prefix longer than 64 nibbles');
    if (n === 0) return '';
    const raw = this.bytes((n + 1) >> 1);
    if (n & 1 && (raw[raw.length - 1]! & 0x0f) !== 0) malformed('prefix padding nibble is not zero');
    return raw.toString('hex').slice(0, n);
  }
  /** `n` ids of a node, strictly ascending, each inside the node. */
  ids(n: number, prefix: string): Buffer[] {
    const skip = prefix.length >> 1;
    const head = Buffer.from(prefix.slice(0, skip * 2), 'hex');
    this.need(n * (32 - skip));
    const out: Buffer[] = [];
    for (let i = 0; i < n; i++) {
      const id = Buffer.concat([head, this.bytes(32 - skip)]);
      if (!idHasPrefix(id, prefix)) malformed('an id lies outside its node');
      if (i > 0 && Buffer.compare(out[i - 1]!, id) >= 0) malformed('ids are not strictly ascending');
      out.push(id);
    }
    return out;
  }
  end(): void {
    if (this.pos !== this.b.length) malformed('trailing bytes');
  }
}

const KIND_BY_CODE = new Map<number, Item['kind']>(Object.entries(ITEM).map(([k, v]) => [v, k as Item['kind']]));

function readItem(r: Reader, allowed: ReadonlySet<Item['kind']>): Item {
  if (++r.items > LIMITS.maxItems) malformed(`more than ${LIMITS.maxItems} items`);
  const kind = KIND_BY_CODE.get(r.u8());
  if (!kind || !allowed.has(kind)) malformed('unknown or misplaced item kind');
  const prefix = r.prefix();
  switch (kind) {
    case 'summary': {
      const count = r.varint(LIMITS.maxCount, 'count');
      if (count === 0) malformed('a summary counts at least one id (an empty node is NONE)');
      return { kind, prefix, count, fingerprint: r.bytes(FINGERPRINT_BYTES) };
    }
    case 'children': {
      if (prefix.length >= MAX_DEPTH) malformed('a node of 64 nibbles has no children');
      const mask = r.u16();
      if (mask === 0) malformed('children of an empty node');
      const children: (Summary | null)[] = [];
      for (let i = 0; i < 16; i++) {
        if (!(mask & (1 << i))) {
          children.push(null);
          continue;
        }
        const count = r.varint(LIMITS.maxCount, 'child count');
        if (count === 0) malformed('a listed child counts at least one id');
        children.push({ count, fingerprint: r.bytes(FINGERPRINT_BYTES) });
      }
      return { kind, prefix, children };
    }
    case 'ids': {
      const n = r.varint(LIMITS.maxIdsPerList, 'id list length');
      if (n === 0) malformed('an empty id list (an empty node is NONE)');
      return { kind, prefix, ids: r.ids(n, prefix) };
    }
    case 'none':
      return { kind, prefix };
    case 'diff': {
      const n = r.varint(LIMITS.maxIdsPerList, 'answered list length');
      if (n === 0) malformed('a diff answers a non-empty list');
      const bits = r.bytes((n + 7) >> 3);
      if (n & 7 && (bits[bits.length - 1]! & (0xff >> (n & 7))) !== 0) malformed('unused bitmap bits are not zero');
      const lacks = Array.from({ length: n }, (_, j) => (bits[j >> 3]! & (0x80 >> (j & 7))) !== 0);
      const need = r.ids(r.varint(LIMITS.maxDiffIds, 'need length'), prefix);
      const nr = r.varint(LIMITS.maxDiffRanges, 'range list length');
      const ranges: { prefix: string; count: number }[] = [];
      for (let i = 0; i < nr; i++) {
        const p = r.prefix();
        if (p.length <= prefix.length || !p.startsWith(prefix)) malformed('a range lies outside its node');
        const count = r.varint(LIMITS.maxCount, 'range count');
        if (count === 0) malformed('an empty range');
        ranges.push({ prefix: p, count });
      }
      return { kind, prefix, lacks, need, ranges };
    }
  }
}

const REQUEST_ITEMS = new Set<Item['kind']>(['summary', 'children', 'ids', 'none']);
const REPLY_ITEMS = new Set<Item['kind']>(['summary', 'children', 'ids', 'none', 'diff']);

function header(r: Reader, bytes: Uint8Array, type: number): void {
  if (bytes.length > LIMITS.maxMessageBytes) malformed(`larger than ${LIMITS.maxMessageBytes} bytes`);
  const version = r.u8();
  if (version !== SYNC_VERSION) malformed(`unsupported version ${version}`);
  if (r.u8() !== type) malformed('unexpected message type');
}

export function decodeRequest(bytes: Uint8Array): SyncRequest {
  const r = new Reader(bytes);
  header(r, bytes, MSG_REQUEST);
  const flags = r.u8();
  if (flags & ~1) malformed('unknown flags');
  const n = r.varint(LIMITS.maxTables, 'table count');
  const tables: RequestTable[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) {
    const table = r.bytes(32);
    const k = table.toString('latin1');
    if (seen.has(k)) malformed('a table is listed twice');
    seen.add(k);
    const m = r.varint(LIMITS.maxItems, 'item count');
    const items: Item[] = [];
    for (let j = 0; j < m; j++) items.push(readItem(r, REQUEST_ITEMS));
    tables.push({ table, items });
  }
  r.end();
  return { allTables: (flags & 1) === 1, tables };
}

export function decodeReply(bytes: Uint8Array): SyncReply {
  const r = new Reader(bytes);
  header(r, bytes, MSG_REPLY);
  const n = r.varint(LIMITS.maxTables + LIMITS.maxExtraTables, 'section count');
  const sections: Section[] = [];
  for (let i = 0; i < n; i++) {
    const tag = r.u8();
    if (tag === SECTION.table) {
      const index = r.varint(LIMITS.maxTables, 'table index');
      const answered = r.varint(LIMITS.maxItems, 'answered');
      const m = r.varint(LIMITS.maxItems, 'item count');
      const items: Item[] = [];
      for (let j = 0; j < m; j++) items.push(readItem(r, REPLY_ITEMS));
      sections.push({ kind: 'table', index, answered, items });
    } else if (tag === SECTION.refused) {
      sections.push({ kind: 'refused', index: r.varint(LIMITS.maxTables, 'table index') });
    } else if (tag === SECTION.extra) {
      const table = r.bytes(32);
      const count = r.varint(LIMITS.maxCount, 'count');
      if (count === 0) malformed('an extra table counts at least one id');
      sections.push({ kind: 'extra', table, count });
    } else malformed('unknown section');
  }
  r.end();
  return { sections };
}
