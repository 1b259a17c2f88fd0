/** `p2pdb get`: fetch entries, verify them, decrypt what is addressed to us. */
import type { KeyObject } from 'node:crypto';
import type { KeyInfo } from '../client/keyring.js';
import type { GetFilters } from '../client/node-api.js';
import { openEntry, verifyStoredEntry, type VerifiedEntry } from '../client/read.js';
import { subscribeEntries } from '../client/subscribe.js';
import type { StoredEntryJson } from '../entry/types.js';
import { PublicKeyCache } from '../crypto/keys.js';
import { P2pdbError } from '../errors.js';
import {
  COMMON_CLIENT_HELP,
  NODE_OPTION,
  UsageError,
  expectPositionals,
  flag,
  nodeAgent,
  nodeApi,
  openKeyring,
  parse,
  positiveInt,
  println,
  shortFingerprint,
  str,
  strs,
  type CliIo,
  type Command,
} from './context.js';
import { decodeText, escapeForTerminal, parseDuration } from './format.js';

const USAGE = `usage: p2pdb get [--table T]... [--recipient R]... [--since 10m|2h|3d|SECONDS] [--limit N] [--json] [--follow]

Fetches entries from the node (all pages), checks each entry's id and signature here
(the node is not trusted), and decrypts those addressed to a private key in the keyring.
One line per entry: time written, table, recipient, text.

options:
  --table T        only this table (keyring name, fingerprint or prefix, or a full
                   64-hex fingerprint of a table not in the keyring); repeatable
  --recipient R    only entries to R (same forms); repeatable. Without --table and
                   --recipient: every key in the keyring that has a private key
  --since D        only entries the node received in the last D (10m, 2h, 3d, or seconds)
  --limit N        print at most N entries (oldest first)
  --json           one JSON object per line instead of text
  --follow, -f     after what is stored, keep printing entries as the node commits them
                   (live, through GET /subscribe/; reconnects and resumes without gaps or
                   repeats); Ctrl-C to stop. Not with --limit
${COMMON_CLIENT_HELP}`;

const GET_MAX_LIST = 200;

interface Row {
  id: string;
  seq: string;
  received_at: number;
  created_at: number;
  table: string;
  table_name: string | null;
  to: string;
  recipient_name: string | null;
  decrypted: boolean;
  text?: string;
  plaintext_base64?: string;
}

export const getCommand: Command = {
  name: 'get',
  summary: 'fetch, verify and decrypt entries',
  usage: USAGE,
  async run(args: string[], io: CliIo): Promise<number> {
    const p = parse('get', args, {
      ...NODE_OPTION,
      table: { type: 'string', multiple: true },
      recipient: { type: 'string', multiple: true },
      since: { type: 'string' },
      limit: { type: 'string' },
      json: { type: 'boolean' },
      follow: { type: 'boolean', short: 'f' },
    });
    if (flag(p, 'help')) {
      println(io.stdout, USAGE);
      return 0;
    }
    expectPositionals('get', p, 0, 0, 'no positional arguments');
    const sinceText = str(p, 'since');
    const secondsSince = sinceText === undefined ? undefined : parseDuration(sinceText);
    if (sinceText !== undefined && secondsSince === undefined) {
      throw new UsageError(`--since ${JSON.stringify(sinceText)}: use 10m, 2h, 3d or a number of seconds`, 'get');
    }
    const limit = positiveInt('get', str(p, 'limit'), '--limit');
    const asJson = flag(p, 'json');
    const follow = flag(p, 'follow');
    if (follow && limit !== undefined) throw new UsageError('--limit and --follow do not go together', 'get');

    const keyring = await openKeyring(io);
    const byFingerprint = new Map(keyring.list().map((k) => [k.fingerprint, k]));
    // A table or recipient may be one we know only by its fingerprint.
    const fingerprintOf = (ref: string): string =>
      /^[0-9a-fA-F]{64}$/.test(ref) && !keyring.list().some((k) => k.name === ref) ? ref.toLowerCase() : keyring.resolve(ref).fingerprint;
    const tables = strs(p, 'table').map(fingerprintOf);
    let recipients = strs(p, 'recipient').map(fingerprintOf);
    if (recipients.length === 0 && tables.length === 0) {
      recipients = keyring.list().filter((k) => k.hasPrivate).map((k) => k.fingerprint);
      if (recipients.length === 0 && secondsSince === undefined) {
        throw new UsageError('the keyring has no private keys to read for: give --recipient, --table or --since', 'get');
      }
    }
    if (tables.length > GET_MAX_LIST || recipients.length > GET_MAX_LIST) {
      throw new UsageError(`at most ${GET_MAX_LIST} tables and ${GET_MAX_LIST} recipients per query`, 'get');
    }

    const filters: GetFilters = {};
    if (secondsSince !== undefined) filters.secondsSince = secondsSince;
    if (tables.length) filters.tables = tables;
    if (recipients.length) filters.recipients = recipients;
    if (limit !== undefined) filters.limit = Math.min(limit, 1000);

    const agent = nodeAgent(io, p);
    const api = nodeApi(io, p, agent);
    const keyCache = new PublicKeyCache(256);
    const privateKeys = new Map<string, KeyObject>();
    const privateKeyFor = async (k: KeyInfo): Promise<KeyObject> => {
      let key = privateKeys.get(k.fingerprint);
      if (!key) {
        key = await keyring.privateKey(k.name);
        privateKeys.set(k.fingerprint, key);
      }
      return key;
    };

    if (follow) {
      // Unlock (scrypt, ~0.4 s) before the stream opens, so the first live entry is not the slow one.
      for (const fp of recipients) {
        const k = byFingerprint.get(fp);
        if (k?.hasPrivate) await privateKeyFor(k);
      }
    }

    let printed = 0;
    let rejected = 0;
    // Following replays from the start of the filter (like get), then stays on the live stream.
    const stop = new AbortController();
    if (follow) void io.stopSignal().then(() => stop.abort());
    const source: AsyncIterable<StoredEntryJson> = follow
      ? subscribeEntries(api.baseUrl, filters, {
          after: '0',
          signal: stop.signal,
          ...(agent ? { agent } : {}),
          onOpen: ({ attempt }) => println(io.stderr, attempt === 1 ? `following ${api.baseUrl} (Ctrl-C to stop)` : `reconnected to ${api.baseUrl}`),
          onReconnect: ({ error, delayMs }) =>
            println(io.stderr, `connection to ${api.baseUrl} lost (${error instanceof Error ? error.message : String(error)}); retrying in ${Math.round(delayMs / 100) / 10} s`),
        })
      : api.getAll(filters);
    for await (const json of source) {
      if (limit !== undefined && printed >= limit) break;
      let v: VerifiedEntry;
      try {
        v = verifyStoredEntry(json, { keys: keyCache });
      } catch (e) {
        if (!(e instanceof P2pdbError)) throw e;
        rejected++;
        const id = typeof (json as { id?: unknown }).id === 'string' ? (json as { id: string }).id : '(no id)';
        println(io.stderr, `warning: skipped entry ${escapeForTerminal(id)} from the node: it failed verification [${e.code}]: ${e.message}`);
        continue;
      }
      const table = byFingerprint.get(v.tableFingerprintHex);
      const recipient = byFingerprint.get(v.toHex);
      const row: Row = {
        id: v.idHex,
        seq: v.seq,
        received_at: v.receivedAt,
        created_at: v.entry.createdAt,
        table: v.tableFingerprintHex,
        table_name: table?.name ?? null,
        to: v.toHex,
        recipient_name: recipient?.name ?? null,
        decrypted: false,
      };
      if (recipient?.hasPrivate) {
        try {
          const plaintext = openEntry(v.entry, await privateKeyFor(recipient));
          row.decrypted = true;
          const text = decodeText(plaintext);
          if (text !== undefined) row.text = text;
          else row.plaintext_base64 = plaintext.toString('base64');
        } catch (e) {
          if (!(e instanceof P2pdbError) || e.code !== 'decrypt_failed') throw e;
          rejected++;
          println(io.stderr, `warning: entry ${v.idHex} is addressed to ${recipient.name} but does not decrypt: ${e.message}`);
          continue;
        }
      }
      printed++;
      println(io.stdout, asJson ? JSON.stringify(row) : textLine(row));
    }
    if (!asJson && printed === 0 && !follow) println(io.stderr, 'no entries');
    if (rejected > 0) println(io.stderr, `${rejected} entr${rejected === 1 ? 'y' : 'ies'} skipped (failed verification or decryption)`);
    return 0;
  },
};

function textLine(r: Row): string {
  const time = new Date(r.created_at).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const table = r.table_name ?? shortFingerprint(r.table);
  const to = r.recipient_name ?? shortFingerprint(r.to);
  let body: string;
  if (!r.decrypted) body = '[encrypted: no private key for this recipient]';
  else if (r.text !== undefined) body = escapeForTerminal(r.text);
  else body = `[binary, ${Buffer.from(r.plaintext_base64 ?? '', 'base64').length} bytes; use --json]`;
  return `${time}  ${table} -> ${to}: ${body}`;
}
