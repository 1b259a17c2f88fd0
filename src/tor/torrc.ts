/**
 * torrc rendering from templates with {{NAME}} placeholders, and the loopback check every
 * rendered torrc passes before a tor is started with it (p2pdb never listens beyond 127.0.0.1).
 */
import { readFile } from 'node:fs/promises';
import { fail } from '../errors.js';

/** A list value repeats the line holding its placeholder once per item (e.g. DirAuthority lines). */
export type TorrcValue = string | number | readonly (string | number)[];
export type TorrcValues = Record<string, TorrcValue>;

const PLACEHOLDER = /\{\{([A-Z0-9_]+)\}\}/g;

export function renderTorrc(template: string, values: TorrcValues): string {
  const missing = new Set<string>();
  const out: string[] = [];
  for (const line of template.split('\n')) {
    // Comments are kept as written: they may mention {{NAME}} to explain the template.
    if (/^\s*#/.test(line)) {
      out.push(line);
      continue;
    }
    const names = [...line.matchAll(PLACEHOLDER)].map((m) => m[1]!);
    const lists = [...new Set(names.filter((n) => Array.isArray(values[n])))];
    if (lists.length > 1) fail('torrc_invalid', `one list placeholder per line: ${line}`);
    const items = lists.length === 1 ? (values[lists[0]!] as readonly (string | number)[]) : [undefined];
    for (const item of items) {
      out.push(
        line.replace(PLACEHOLDER, (_, name: string) => {
          const v = name === lists[0] ? item : values[name];
          if (v === undefined) {
            missing.add(name);
            return '';
          }
          const text = String(v);
          // A value must not be able to add config lines of its own.
          if (/[\r\n\0]/.test(text)) fail('torrc_invalid', `value for {{${name}}} contains a line break`);
          return text;
        }),
      );
    }
  }
  if (missing.size > 0) fail('torrc_invalid', `no value for ${[...missing].map((n) => `{{${n}}}`).join(', ')}`);
  return out.join('\n');
}

export async function renderTorrcFile(templatePath: string, values: TorrcValues): Promise<string> {
  return renderTorrc(await readFile(templatePath, 'utf8'), values);
}

/** Options that open a listening socket; their address must be loopback or a unix socket. */
const LISTENERS = new Set(
  ['SocksPort', 'ControlPort', 'ORPort', 'DirPort', 'TransPort', 'NATDPort', 'DNSPort', 'HTTPTunnelPort', 'ExtORPort', 'MetricsPort'].map(
    (k) => k.toLowerCase(),
  ),
);
const LOOPBACK_LISTEN = /^(0|127\.0\.0\.1:(\d{1,5}|auto)|unix:\S+)$/;

/** Throws torrc_invalid naming the first line that would listen on or advertise another address. */
export function assertLoopbackTorrc(torrc: string): void {
  for (const { key, args, text } of torrcEntries(torrc)) {
    const first = args[0] ?? '';
    if (LISTENERS.has(key)) {
      if (!LOOPBACK_LISTEN.test(first)) fail('torrc_invalid', `listener not on 127.0.0.1: ${text}`);
    } else if (key.endsWith('listenaddress')) {
      fail('torrc_invalid', `obsolete listener option (use *Port 127.0.0.1:P): ${text}`);
    } else if (key === 'address' || key.startsWith('outboundbindaddress')) {
      if (first !== '127.0.0.1') fail('torrc_invalid', `address is not 127.0.0.1: ${text}`);
    } else if (key === 'hiddenserviceport') {
      const target = args[1];
      if (target !== undefined && !/^(127\.0\.0\.1:\d{1,5}|unix:\S+)$/.test(target)) {
        fail('torrc_invalid', `onion target not on 127.0.0.1: ${text}`);
      }
    }
  }
}

interface TorrcEntry {
  /** Lower-cased option name without a leading '+' or '/'. */
  key: string;
  args: string[];
  text: string;
}

/** Config lines as tor reads them: comments dropped, backslash continuations joined. */
function torrcEntries(torrc: string): TorrcEntry[] {
  const joined = torrc.replace(/\\\r?\n/g, ' ');
  const entries: TorrcEntry[] = [];
  for (const raw of joined.split(/\r?\n/)) {
    const text = raw.replace(/(^|\s)#.*$/, '').trim();
    if (text === '') continue;
    const [key = '', ...args] = text.split(/\s+/);
    entries.push({ key: key.replace(/^[+/]/, '').toLowerCase(), args, text });
  }
  return entries;
}
