/**
 * Set reconciliation over the prefix tree (docs/PROTOCOL.md §9): the stateless server side
 * (answerSync) and the client side (Reconciliation), both pure over a SyncView.
 *
 * Each message descends one level where fingerprints differ: the client compares the server's
 * children and sends its own children of the nodes that differ, the server does the same, so a
 * round trip descends two levels. A side whose node is small (≤ listThreshold ids) sends its
 * ids instead; the other side then computes the exact difference for that node locally. A side
 * holding nothing of a node says so, and the other records a whole range instead of ids.
 */
import { P2pdbError } from '../errors.js';
import {
  decodeReply,
  decodeRequest,
  encodeRequest,
  itemBytes,
  LIMITS,
  replyHeader,
  sectionBytes,
  type Item,
  type RequestTable,
  type Section,
  type Summary,
} from './codec.js';
import { fingerprintOfIds } from './fingerprint.js';
import { MAX_DEPTH, nibbleAt } from './prefix.js';
import type { NodeSummary, SyncView } from './view.js';

export interface SyncScope {
  mirrors(table: Buffer): boolean;
}

export interface SyncRange {
  table: Buffer;
  /** Hex nibbles, '' = the whole table. */
  prefix: string;
  /** The holder's count. */
  count: number;
}

export interface ReconcileTuning {
  /** A node with at most this many ids is answered with its ids rather than its children. */
  listThreshold: number;
  /** Receiving an id list, a side enumerates its own ids of a node once it holds at most this many. */
  enumerateThreshold: number;
  /** Bytes the client puts in one request (the rest waits for the next round). */
  requestBudget: number;
  /** Items the client may have queued before it gives up on a peer that keeps widening the search. */
  maxPending: number;
}

/**
 * Defaults chosen by scripts/bench/sync-core.ts (threshold sweep): 32 keeps a 1 M-id table at 3
 * round trips for d = 1 (its depth-4 nodes hold ~15 ids) while a list costs at most ~1 KB.
 */
export const DEFAULT_TUNING: ReconcileTuning = {
  listThreshold: 32,
  enumerateThreshold: 32,
  requestBudget: 64 * 1024,
  maxPending: 1_000_000,
};

function malformed(why: string): never {
  throw new P2pdbError('sync_malformed', `bad sync message: ${why}`);
}

function same(a: Summary | NodeSummary, b: Summary | NodeSummary): boolean {
  return a.count === b.count && a.fingerprint.equals(b.fingerprint);
}

/** What a side sends about its own node that differs: its ids when small, else its children. */
async function describe(view: SyncView, table: Buffer, prefix: string, mine: NodeSummary, t: ReconcileTuning): Promise<Item> {
  if (mine.count === 0) return { kind: 'none', prefix };
  if (mine.count <= t.listThreshold || prefix.length === MAX_DEPTH) {
    const ids = await view.ids(table, prefix, LIMITS.maxIdsPerList + 1);
    if (ids.length === 0) return { kind: 'none', prefix };
    if (ids.length <= LIMITS.maxIdsPerList || prefix.length === MAX_DEPTH) return { kind: 'ids', prefix, ids };
  }
  const kids = await view.children(table, prefix);
  return { kind: 'children', prefix, children: kids.map((k) => (k.count === 0 ? null : k)) };
}

interface LocalDiff {
  /** The peer's ids that this side lacks. */
  iLack: Buffer[];
  /** This side's ids that the peer lacks. */
  peerLacks: Buffer[];
  /** This side's sub-nodes of which the peer holds nothing. */
  ranges: { prefix: string; count: number }[];
}

/**
 * Exact difference between the peer's complete id list of a node and this side's node:
 * descends this side's tree (children fingerprints skip equal parts) until its node is small
 * enough to enumerate. Work is bounded by the list length times the depth.
 */
async function localDiff(view: SyncView, table: Buffer, prefix: string, peerIds: Buffer[], t: ReconcileTuning): Promise<LocalDiff> {
  const out: LocalDiff = { iLack: [], peerLacks: [], ranges: [] };
  const walk = async (p: string, theirs: Buffer[], mine: NodeSummary): Promise<void> => {
    if (mine.count === 0) {
      out.iLack.push(...theirs);
      return;
    }
    if (theirs.length === 0) {
      out.ranges.push({ prefix: p, count: mine.count });
      return;
    }
    if (mine.count <= t.enumerateThreshold || p.length === MAX_DEPTH) {
      const own = await view.ids(table, p, Number.MAX_SAFE_INTEGER);
      const theirSet = new Set(theirs.map((id) => id.toString('latin1')));
      const ownSet = new Set(own.map((id) => id.toString('latin1')));
      for (const id of theirs) if (!ownSet.has(id.toString('latin1'))) out.iLack.push(id);
      for (const id of own) if (!theirSet.has(id.toString('latin1'))) out.peerLacks.push(id);
      return;
    }
    if (theirs.length === mine.count && fingerprintOfIds(theirs).equals(mine.fingerprint)) return;
    const kids = await view.children(table, p);
    const groups: Buffer[][] = Array.from({ length: 16 }, () => []);
    for (const id of theirs) groups[nibbleAt(id, p.length)]!.push(id);
    for (let i = 0; i < 16; i++) {
      const k = kids[i]!;
      const g = groups[i]!;
      if (k.count === 0 && g.length === 0) continue;
      await walk(p + i.toString(16), g, k);
    }
  };
  await walk(prefix, peerIds, await view.node(table, prefix));
  return out;
}

// ---------------------------------------------------------------- server

async function answerItem(view: SyncView, table: Buffer, item: Item, t: ReconcileTuning): Promise<Item[]> {
  switch (item.kind) {
    case 'summary': {
      const mine = await view.node(table, item.prefix);
      if (mine.count === 0) return [{ kind: 'none', prefix: item.prefix }];
      if (same(mine, item)) return [];
      return [await describe(view, table, item.prefix, mine, t)];
    }
    case 'none': {
      const mine = await view.node(table, item.prefix);
      return mine.count === 0 ? [] : [{ kind: 'summary', prefix: item.prefix, ...mine }];
    }
    case 'children': {
      const kids = await view.children(table, item.prefix);
      const out: Item[] = [];
      for (let i = 0; i < 16; i++) {
        const theirs = item.children[i]!;
        const mine = kids[i]!;
        const q = item.prefix + i.toString(16);
        if (!theirs) {
          if (mine.count > 0) out.push({ kind: 'summary', prefix: q, ...mine });
        } else if (mine.count === 0) out.push({ kind: 'none', prefix: q });
        else if (!same(theirs, mine)) out.push(await describe(view, table, q, mine, t));
      }
      return out;
    }
    case 'ids': {
      const d = await localDiff(view, table, item.prefix, item.ids, t);
      if (d.iLack.length === 0 && d.peerLacks.length === 0 && d.ranges.length === 0) return [];
      const lackSet = new Set(d.iLack.map((id) => id.toString('latin1')));
      return [
        {
          kind: 'diff',
          prefix: item.prefix,
          lacks: item.ids.map((id) => lackSet.has(id.toString('latin1'))),
          need: d.peerLacks.sort(Buffer.compare),
          ranges: d.ranges,
        },
      ];
    }
    case 'diff':
      return malformed('a request cannot carry a diff');
  }
}

/** Server side of POST /sync/: one reply per request, no state kept between requests. */
export async function answerSync(
  view: SyncView,
  request: Uint8Array,
  scope: SyncScope,
  tuning: ReconcileTuning = DEFAULT_TUNING,
): Promise<Uint8Array> {
  const req = decodeRequest(request);
  const extras: Section[] = [];
  if (req.allTables) {
    const listed = new Set(req.tables.map((t) => t.table.toString('latin1')));
    const mine = view
      .tableList()
      .filter((t) => !listed.has(t.toString('latin1')) && scope.mirrors(t))
      .sort(Buffer.compare)
      .slice(0, LIMITS.maxExtraTables);
    for (const table of mine) {
      const root = await view.node(table, '');
      if (root.count > 0) extras.push({ kind: 'extra', table, count: root.count });
    }
  }
  const extraBytes = extras.map((s) => sectionBytes(s));
  // Room for every section header, so a full reply still names every table.
  let used = 16 + extraBytes.reduce((n, b) => n + b.length, 0) + req.tables.length * 12;
  const parts: Buffer[] = [];
  let answeredAny = false;
  let full = false;
  for (let i = 0; i < req.tables.length; i++) {
    const { table, items } = req.tables[i]!;
    if (!scope.mirrors(table)) {
      parts.push(sectionBytes({ kind: 'refused', index: i }));
      continue;
    }
    const encoded: Buffer[] = [];
    let answered = 0;
    for (const item of full ? [] : items) {
      const out = (await answerItem(view, table, item, tuning)).map(itemBytes);
      const size = out.reduce((n, b) => n + b.length, 0);
      // Spread a large difference over more rounds: the client sends unanswered items again.
      if (answeredAny && used + size > LIMITS.maxMessageBytes) {
        full = true;
        break;
      }
      used += size;
      encoded.push(...out);
      answered++;
      answeredAny = true;
    }
    parts.push(sectionBytes({ kind: 'table', index: i, answered, items: [] }, encoded));
  }
  return Buffer.concat([replyHeader(req.tables.length + extras.length), ...parts, ...extraBytes]);
}

// ---------------------------------------------------------------- client

interface Pending {
  table: Buffer;
  items: Item[];
}

export class Reconciliation {
  readonly need: Buffer[] = [];
  readonly give: Buffer[] = [];
  readonly needRanges: SyncRange[] = [];
  readonly giveRanges: SyncRange[] = [];
  readonly refusedTables: Buffer[] = [];
  readonly stats = { roundTrips: 0, bytesSent: 0, bytesReceived: 0 };

  private readonly pending = new Map<string, Pending>();
  private pendingCount = 0;
  private lastSent: { tables: RequestTable[]; allTables: boolean } | null = null;
  private readonly tuning: ReconcileTuning;

  constructor(
    private readonly view: SyncView,
    private readonly opts: { tables: Buffer[]; allTables: boolean; scope: SyncScope; tuning?: Partial<ReconcileTuning> },
  ) {
    this.tuning = { ...DEFAULT_TUNING, ...opts.tuning };
  }

  async first(): Promise<Uint8Array> {
    const seen = new Set<string>();
    for (const table of this.opts.tables) {
      const k = table.toString('latin1');
      if (seen.has(k)) continue;
      seen.add(k);
      const root = await this.view.node(table, '');
      this.enqueue(table, root.count === 0 ? { kind: 'none', prefix: '' } : { kind: 'summary', prefix: '', ...root });
    }
    // The first request always goes out, even empty, so an empty '*' node learns the peer's tables.
    return this.send(this.opts.allTables, true)!;
  }

  async next(reply: Uint8Array): Promise<Uint8Array | null> {
    const sent = this.lastSent;
    if (!sent) malformed('next() before first()');
    this.lastSent = null;
    this.stats.roundTrips++;
    this.stats.bytesReceived += reply.length;
    const { sections } = decodeReply(reply);
    let i = 0;
    let answeredTotal = 0;
    const requested = sent.tables.reduce((n, t) => n + t.items.length, 0);
    for (; i < sent.tables.length; i++) {
      const s = sections[i];
      const { table, items } = sent.tables[i]!;
      if (!s || s.kind === 'extra' || s.index !== i) malformed('reply sections do not follow the request');
      if (s.kind === 'refused') {
        this.refusedTables.push(table);
        continue;
      }
      if (s.answered > items.length) malformed('more items answered than asked');
      answeredTotal += s.answered;
      const asked = items.slice(0, s.answered);
      for (const item of items.slice(s.answered)) this.enqueue(table, item);
      await this.absorb(table, asked, s.items);
    }
    for (; i < sections.length; i++) {
      const s = sections[i]!;
      if (s.kind !== 'extra' || !sent.allTables) malformed('unexpected section');
      if (this.opts.scope.mirrors(s.table)) this.needRanges.push({ table: s.table, prefix: '', count: s.count });
    }
    if (requested > 0 && answeredTotal === 0 && !sections.some((s) => s.kind === 'refused')) malformed('the peer answered nothing');
    return this.send(false, false);
  }

  private enqueue(table: Buffer, item: Item): void {
    const k = table.toString('latin1');
    let p = this.pending.get(k);
    if (!p) this.pending.set(k, (p = { table, items: [] }));
    p.items.push(item);
    if (++this.pendingCount > this.tuning.maxPending) malformed('the peer keeps widening the search');
  }

  private send(allTables: boolean, always: boolean): Uint8Array | null {
    const tables: RequestTable[] = [];
    let bytes = 8;
    let items = 0;
    for (const [k, p] of this.pending) {
      if (tables.length >= LIMITS.maxTables) break;
      const take: Item[] = [];
      bytes += 36;
      while (p.items.length > 0 && items < LIMITS.maxItems) {
        const size = itemBytes(p.items[0]!).length;
        if (items > 0 && bytes + size > this.tuning.requestBudget) break;
        take.push(p.items.shift()!);
        bytes += size;
        items++;
      }
      this.pendingCount -= take.length;
      if (take.length > 0) tables.push({ table: p.table, items: take });
      if (p.items.length === 0) this.pending.delete(k);
      if (bytes >= this.tuning.requestBudget || items >= LIMITS.maxItems) break;
    }
    if (tables.length === 0 && !always) return null;
    this.lastSent = { tables, allTables };
    const out = encodeRequest({ allTables, tables });
    this.stats.bytesSent += out.length;
    return out;
  }

  /** Folds one table's reply items into the results and the next request. */
  private async absorb(table: Buffer, asked: Item[], replyItems: Item[]): Promise<void> {
    // A reply item must concern a node asked about or one of its children; a diff answers our list.
    const nodes = new Set<string>();
    const lists = new Map<string, Buffer[]>();
    for (const a of asked) {
      nodes.add(a.prefix);
      if (a.kind === 'ids') lists.set(a.prefix, a.ids);
      if (a.kind === 'children' || a.kind === 'summary') for (let n = 0; n < 16; n++) nodes.add(a.prefix + n.toString(16));
    }
    const seen = new Set<string>();
    const v = this.view;
    for (const item of replyItems) {
      if (!nodes.has(item.prefix) || seen.has(item.prefix)) malformed('an answer about a node not asked about');
      seen.add(item.prefix);
      const p = item.prefix;
      switch (item.kind) {
        case 'summary': {
          const mine = await v.node(table, p);
          if (mine.count === 0) this.needRanges.push({ table, prefix: p, count: item.count });
          else if (!same(mine, item)) this.enqueue(table, await describe(v, table, p, mine, this.tuning));
          break;
        }
        case 'none': {
          const mine = await v.node(table, p);
          if (mine.count > 0) this.giveRanges.push({ table, prefix: p, count: mine.count });
          break;
        }
        case 'children': {
          const kids = await v.children(table, p);
          for (let n = 0; n < 16; n++) {
            const theirs = item.children[n]!;
            const mine = kids[n]!;
            const q = p + n.toString(16);
            if (!theirs) {
              if (mine.count > 0) this.giveRanges.push({ table, prefix: q, count: mine.count });
            } else if (mine.count === 0) this.needRanges.push({ table, prefix: q, count: theirs.count });
            else if (!same(theirs, mine)) this.enqueue(table, await describe(v, table, q, mine, this.tuning));
          }
          break;
        }
        case 'ids': {
          const d = await localDiff(v, table, p, item.ids, this.tuning);
          this.need.push(...d.iLack);
          this.give.push(...d.peerLacks);
          for (const r of d.ranges) this.giveRanges.push({ table, ...r });
          break;
        }
        case 'diff': {
          const sentIds = lists.get(p);
          if (!sentIds || sentIds.length !== item.lacks.length) malformed('a diff that answers no list of ours');
          item.lacks.forEach((l, j) => {
            if (l) this.give.push(sentIds[j]!);
          });
          this.need.push(...item.need);
          for (const r of item.ranges) this.needRanges.push({ table, ...r });
          break;
        }
      }
    }
  }
}
