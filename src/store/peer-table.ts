/**
 * The peer table (0002_peers), on the store's connection for small writes (sqlite/open.ts says
 * why SQLite gives it a connection of its own). Written with knex's query builder only, so the
 * same code runs on SQLite and PostgreSQL.
 *
 * Trust levels: a peer is `verified` once it proved its key (a signed hello to us, or an
 * answer when we dialed its onion). Peers named in other nodes' lists are unverified
 * candidates. The table is bounded and aged; operator-added peers ('config', 'manual') are
 * never dropped automatically.
 */
import type { Knex } from 'knex';
import { fail } from '../errors.js';
import type { TableSet } from '../entry/table-policy.js';
import { isOnionAddress, type HelloMessage } from '../peers/hello.js';
import type { PeerClaim, PeerSummary } from '../peers/peer-list.js';
import type { SerialWrites } from './serial.js';

export type PeerSource = 'config' | 'manual' | 'hello' | 'learned';

export interface PeerRecord {
  onion: string;
  /** NULL until known; for an unverified peer, what another node claimed. */
  tables: TableSet | null;
  powBits: number | null;
  protocol: string | null;
  software: string | null;
  firstSeen: number;
  /** Last verified hello from it or successful contact by us (ms). */
  lastSeen: number | null;
  lastAttempt: number | null;
  /** When the peering loop greets it next; null: as soon as possible. */
  nextAttempt: number | null;
  /** Consecutive failed attempts (reset by a successful contact). */
  failures: number;
  source: PeerSource;
  verified: boolean;
}

export interface PeerLimits {
  /** Bound on the table; when full, unverified and failing peers make room first. */
  maxPeers: number;
  /** Unverified or failing peers not seen for this long are dropped. */
  staleAfterMs: number;
  /** A peer with this many consecutive failures counts as failing. */
  failingAfter: number;
}

export const PEER_LIMITS: PeerLimits = {
  maxPeers: 1000,
  staleAfterMs: 7 * 24 * 60 * 60 * 1000,
  failingAfter: 3,
};

/** Sources an operator chose: they outrank learned ones and are never dropped automatically. */
const OPERATOR_SOURCES: readonly PeerSource[] = ['config', 'manual'];
const SOURCE_RANK: Record<PeerSource, number> = { learned: 0, hello: 1, config: 2, manual: 3 };

interface PeerRow {
  onion: string;
  tables: string | null;
  pow_bits: number | null;
  protocol: string | null;
  software: string | null;
  first_seen: number;
  last_seen: number | null;
  last_attempt: number | null;
  next_attempt: number | null;
  failures: number;
  source: PeerSource;
  verified: number;
}

function encodeTables(tables: TableSet | null): string | null {
  if (tables === null) return null;
  return tables === '*' ? '*' : JSON.stringify(tables);
}

function decodeTables(text: string | null): TableSet | null {
  if (text === null) return null;
  if (text === '*') return '*';
  try {
    const list: unknown = JSON.parse(text);
    return Array.isArray(list) && list.every((t) => typeof t === 'string') ? (list as string[]) : null;
  } catch {
    return null;
  }
}

function toRecord(r: PeerRow): PeerRecord {
  return {
    onion: r.onion,
    tables: decodeTables(r.tables),
    powBits: r.pow_bits,
    protocol: r.protocol,
    software: r.software,
    firstSeen: r.first_seen,
    lastSeen: r.last_seen,
    lastAttempt: r.last_attempt,
    nextAttempt: r.next_attempt,
    failures: r.failures,
    source: r.source,
    verified: r.verified === 1,
  };
}

export interface PeerTableOptions {
  /** This node's own address: never stored as a peer. */
  self?: string;
  limits?: Partial<PeerLimits>;
}

export type AddResult = 'added' | 'exists' | 'self';

export class PeerTable {
  readonly limits: PeerLimits;
  private readonly self: string | undefined;
  constructor(
    private readonly knex: Knex,
    /** Multi-statement writes (make room, then insert) run one at a time, so the bound holds. */
    private readonly serial: SerialWrites,
    opts: PeerTableOptions = {},
  ) {
    this.limits = { ...PEER_LIMITS, ...opts.limits };
    this.self = opts.self;
  }

  async get(onion: string): Promise<PeerRecord | undefined> {
    const row = (await this.knex<PeerRow>('peers').where({ onion }).first()) as PeerRow | undefined;
    return row ? toRecord(row) : undefined;
  }

  /** Every peer, verified first, then most recently seen. */
  async list(): Promise<PeerRecord[]> {
    const rows = (await this.knex<PeerRow>('peers')
      .select('*')
      .orderBy([{ column: 'verified', order: 'desc' }])
      .orderByRaw('COALESCE(last_seen, first_seen) DESC, onion')) as PeerRow[];
    return rows.map(toRecord);
  }

  async count(): Promise<number> {
    const [row] = (await this.knex('peers').count({ n: '*' })) as { n: number }[];
    return Number(row?.n ?? 0);
  }

  /**
   * What /hello/ may show others: peers this node reached itself. An inbound hello proves the
   * sender holds the key, not that its onion is published or reachable (a Sybil with free keys
   * could otherwise fill everyone's lists with unreachable addresses); the peering loop greets
   * a new sender back at once, and then it is listed. Only a successful contact (recordContact)
   * leaves last_attempt set with failures 0: a failed dial counts a failure, an inbound hello
   * touches neither, so a peer whose latest dial failed is not listed until it answers again.
   */
  async listable(): Promise<PeerSummary[]> {
    const rows = (await this.knex<PeerRow>('peers')
      .select('onion', 'tables', 'pow_bits', 'last_seen')
      .where('verified', 1)
      .andWhere('failures', 0)
      .whereNotNull('last_attempt')
      .whereNotNull('last_seen')
      .whereNotNull('tables')
      .whereNotNull('pow_bits')) as PeerRow[];
    return rows.flatMap((r) => {
      const tables = decodeTables(r.tables);
      return tables === null ? [] : [{ onion: r.onion, tables, pow_bits: r.pow_bits!, last_seen: r.last_seen! }];
    });
  }

  /** An operator's peer (bootstrap config or `p2pdb peers add`). An existing peer keeps its data and is promoted to `source`. */
  async add(onion: string, source: 'config' | 'manual', now: number): Promise<AddResult> {
    if (!isOnionAddress(onion)) fail('malformed', `not a v3 onion address: ${onion}`);
    if (onion === this.self) return 'self';
    return this.serial.run(async () => {
      const existing = await this.get(onion);
      if (existing) {
        if (SOURCE_RANK[source] > SOURCE_RANK[existing.source]) await this.knex('peers').where({ onion }).update({ source });
        return 'exists';
      }
      await this.makeRoom(1, true);
      await this.knex('peers').insert({ onion, first_seen: now, source, verified: 0, failures: 0 });
      return 'added';
    });
  }

  async remove(onion: string): Promise<boolean> {
    return this.serial.run(async () => (await this.knex('peers').where({ onion }).del()) > 0);
  }

  /**
   * A hello that passed every check (checkSignedHello): the sender proved its key, so it is
   * verified; its self-description replaces what we had. Our own schedule for it is unchanged
   * (a new peer is due at once, so we greet it back and learn whether we can reach it).
   * Keys cost nothing to make, so a new sender may only push out unverified or failing peers;
   * when there are none it is not stored (false).
   */
  async recordInboundHello(hello: HelloMessage, now: number): Promise<boolean> {
    if (hello.onion === this.self) fail('hello_self', 'a hello may not claim this node’s own address');
    return this.serial.run(async () => {
      const described = {
        tables: encodeTables(hello.tables),
        pow_bits: hello.pow_bits,
        protocol: hello.protocol,
        software: hello.software,
        last_seen: now,
        verified: 1,
      };
      const updated = await this.knex('peers').where({ onion: hello.onion }).update(described);
      if (updated > 0) return true;
      if ((await this.makeRoom(1, false)) < 1) return false;
      await this.knex('peers').insert({ onion: hello.onion, first_seen: now, source: 'hello', failures: 0, ...described });
      return true;
    });
  }

  /**
   * We reached the peer and its answer carried a valid hello from it: verified, failures reset.
   * Updates only (false when the peer was removed meanwhile: an operator's removal wins).
   */
  recordContact(hello: HelloMessage, now: number, nextAttempt: number): Promise<boolean> {
    return this.serial.run(async () => {
      const updated = await this.knex('peers').where({ onion: hello.onion }).update({
        tables: encodeTables(hello.tables),
        pow_bits: hello.pow_bits,
        protocol: hello.protocol,
        software: hello.software,
        last_seen: now,
        last_attempt: now,
        next_attempt: nextAttempt,
        failures: 0,
        verified: 1,
      });
      return updated > 0;
    });
  }

  /** A failed attempt; `next(failures)` gives the next attempt time for the new failure count. Returns that count. */
  recordFailure(onion: string, now: number, next: (failures: number) => number): Promise<number | undefined> {
    return this.serial.run(async () => {
      const peer = await this.get(onion);
      if (!peer) return undefined;
      const failures = peer.failures + 1;
      await this.knex('peers').where({ onion }).update({ failures, last_attempt: now, next_attempt: next(failures) });
      return failures;
    });
  }

  /**
   * Peers another node listed: stored as unverified candidates, only if unknown (a claim never
   * changes what we know), and only while there is room (they may push out other unverified
   * or failing peers, never healthy verified ones). Returns how many were added.
   */
  addCandidates(claims: readonly PeerClaim[], now: number): Promise<number> {
    return this.serial.run(async () => {
      let added = 0;
      for (const c of claims) {
        if (c.onion === this.self || !isOnionAddress(c.onion)) continue;
        if (await this.get(c.onion)) continue;
        if ((await this.makeRoom(1, false)) < 1) break;
        await this.knex('peers').insert({
          onion: c.onion,
          tables: encodeTables(c.tables),
          pow_bits: c.pow_bits,
          first_seen: now,
          source: 'learned',
          verified: 0,
          failures: 0,
        });
        added++;
      }
      return added;
    });
  }

  /** Peers whose next attempt is due, never-tried ones first, at most `limit`, skipping `exclude`. */
  async due(now: number, limit: number, exclude: ReadonlySet<string> = new Set()): Promise<PeerRecord[]> {
    const rows = (await this.knex<PeerRow>('peers')
      .select('*')
      .where((q) => q.whereNull('next_attempt').orWhere('next_attempt', '<=', now))
      .orderByRaw('next_attempt IS NOT NULL, next_attempt, first_seen')
      .limit(limit + exclude.size)) as PeerRow[];
    return rows
      .map(toRecord)
      .filter((p) => !exclude.has(p.onion) && p.onion !== this.self)
      .slice(0, limit);
  }

  /** Drops unverified and failing peers not seen for limits.staleAfterMs. Returns how many. */
  prune(now: number): Promise<number> {
    return this.serial.run(() =>
      this.knex('peers')
        .whereNotIn('source', OPERATOR_SOURCES)
        .andWhere((q) => q.where('verified', 0).orWhere('failures', '>=', this.limits.failingAfter))
        .andWhereRaw('COALESCE(last_seen, first_seen) < ?', [now - this.limits.staleAfterMs])
        .del(),
    );
  }

  /** Verified peers whose table list is known: who may be synced with (sync applies its bans, sync-state.ts). */
  async syncable(): Promise<PeerRecord[]> {
    const rows = (await this.knex<PeerRow>('peers').select('*').where('verified', 1).whereNotNull('tables').orderBy('onion')) as PeerRow[];
    return rows.map(toRecord).filter((p) => p.onion !== this.self);
  }

  /**
   * Frees room for `n` new peers by dropping unverified, then failing, then (only when
   * `evenHealthy`: for an operator's peer) the least recently seen verified peers; operator
   * peers are never dropped.
   * Returns the room left (may be < n when nothing more may go).
   */
  private async makeRoom(n: number, evenHealthy: boolean): Promise<number> {
    const excess = (await this.count()) + n - this.limits.maxPeers;
    if (excess <= 0) return n;
    const f = this.limits.failingAfter;
    const victims = this.knex('peers')
      .select('onion')
      .whereNotIn('source', OPERATOR_SOURCES)
      .modify((q) => {
        if (!evenHealthy) q.andWhere((w) => w.where('verified', 0).orWhere('failures', '>=', f));
      })
      .orderByRaw('verified, failures < ?, COALESCE(last_seen, first_seen), onion', [f])
      .limit(excess);
    const dropped = await this.knex('peers').whereIn('onion', victims).del();
    return n - excess + dropped;
  }
}
