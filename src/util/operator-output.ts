/**
 * What an operator watching `p2pdb serve` in a terminal reads: short plain lines about what
 * matters (Tor's bootstrap, the onion being published, what to try when Tor cannot connect),
 * instead of the JSON log lines meant for machines. And the summariser that keeps tor's own
 * repeated warnings (dozens a minute without a network) to one line plus a count.
 *
 * Both are pure (state in, lines out, clock passed in) so they are tested without a terminal.
 */
import { fail } from '../errors.js';
import type { LogLevel } from './log.js';

export type LogFormat = 'json' | 'plain';

export interface LogEntry {
  /** ms since the epoch. */
  t: number;
  level: LogLevel;
  msg: string;
  fields?: Record<string, unknown>;
}

/** --log-format wins; else P2PDB_LOG_FORMAT; else plain on a terminal, JSON lines otherwise. */
export function chooseLogFormat(flag: string | undefined, env: string | undefined, isTerminal: boolean): LogFormat {
  const chosen = flag ?? (env !== undefined && env !== '' ? env : undefined);
  if (chosen === undefined) return isTerminal ? 'plain' : 'json';
  if (chosen !== 'plain' && chosen !== 'json') fail('config_invalid', `log format must be plain or json, got ${JSON.stringify(chosen)}`);
  return chosen;
}

/** What the plain view remembers between lines. */
export interface PlainState {
  /** The last bootstrap percentage shown (-1: none yet). */
  shownProgress: number;
  /** The advice on what to try is shown once per outage. */
  adviceShown: boolean;
}

export function newPlainState(): PlainState {
  return { shownProgress: -1, adviceShown: false };
}

/** Where bridges come from, and how a node uses them today (torExtraLines in DATA/config.json). */
export const BRIDGE_ADVICE = [
  '  What to try: check that this machine is online and its clock is right.',
  '  If Tor is blocked where you are, use bridges: get obfs4 bridge lines at https://bridges.torproject.org/',
  '  (or by email to bridges@torproject.org), install obfs4proxy, and add to DATA/config.json:',
  '    "torExtraLines": ["UseBridges 1", "ClientTransportPlugin obfs4 exec /usr/bin/obfs4proxy", "Bridge obfs4 <the line you got>"]',
  "  The node keeps serving on 127.0.0.1 meanwhile, and Tor keeps trying (tor's own log: DATA/tor/tor.log).",
];

/**
 * tor's own lines about failing to connect while bootstrapping: the node's "Tor cannot reach
 * the Tor network" line says the same in words (with the advice), so the plain view leaves
 * them to DATA/tor/tor.log and the JSON log.
 */
const BOOTSTRAP_NOISE = /^(Problem bootstrapping\.|\d+ connections have failed:|\d+ connections died in state )/;

const short = (text: string, max: number) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);
const clock = (t: number) => new Date(t).toTimeString().slice(0, 8);
const str = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));

/**
 * The plain lines (zero or more) for one log entry. Progress is shown at 0, every 25 points
 * and at 100 rather than at each of Tor's ~20 phases; debug entries are never shown.
 */
export function plainLines(entry: LogEntry, state: PlainState): string[] {
  if (entry.level === 'debug') return [];
  const f = entry.fields ?? {};
  const at = clock(entry.t);
  const line = (text: string) => `${at} ${text}`;
  switch (entry.msg) {
    case 'tor bootstrap': {
      const progress = Number(f.progress);
      // Shown at the first report, every 25 points, at 100, and when it starts over (tor restarted).
      if (progress === state.shownProgress) return [];
      if (progress < 100 && progress > state.shownProgress && state.shownProgress >= 0 && progress < state.shownProgress + 25) return [];
      state.shownProgress = progress;
      if (progress >= 100) {
        state.adviceShown = false; // a later outage gets the advice again
        return [line('Tor: connected to the Tor network (100%)')];
      }
      return [line(`Tor: connecting to the Tor network, ${progress}% (${str(f.summary)})`)];
    }
    case 'onion service added':
      return [line(`Onion address ${str(f.address)}: handed to Tor, waiting for it to be published`)];
    case 'onion service published':
      return [line(`Published: peers and browsers can now reach http://${str(f.address)}/ through Tor`)];
    case 'tor control reconnected; onion added again':
      return [line(`Tor is back; the onion ${str(f.address)} was added again`)];
    case 'tor control connection lost; reconnecting':
      return [line(`Lost the connection to tor (${str(f.reason)}); reconnecting${f.restart_tor ? ' and restarting it' : ''}`)];
    case 'onion service DoS defences':
      return [line(`DoS defences (tor ${str(f.tor_version)}): ${(Array.isArray(f.defences) ? f.defences : []).map(str).join('; ')}`)];
    case 'proof-of-work defence advertised in the published descriptor':
      return [line('DoS defences: the published descriptor asks clients for proof of work under load')];
    case 'tor cannot reach the Tor network': {
      const out = [line(`Tor cannot reach the Tor network: ${str(f.detail)}`)];
      if (!state.adviceShown) {
        state.adviceShown = true;
        out.push(...BRIDGE_ADVICE);
      }
      return out;
    }
    case 'tor says':
      if (BOOTSTRAP_NOISE.test(torText(str(f.line)))) return [];
      return [line(`tor: ${torText(str(f.line))}`)];
    case 'tor repeated a warning':
      if (BOOTSTRAP_NOISE.test(torText(str(f.line)))) return [];
      return [line(`tor: ${str(f.repeats)} more like this in ${str(f.within_s)} s: ${short(torText(str(f.line)), 100)}`)];
    case 'stopping tor':
    case 'onion service removed':
    case 'tor has already exited; nothing to remove':
      return []; // serve says what a stop does on stdout
    default:
      break;
  }
  const details = Object.entries(f)
    .filter(([, v]) => v !== undefined && v !== null && typeof v !== 'object')
    .slice(0, 4)
    .map(([k, v]) => `${k} ${String(v).slice(0, 100)}`);
  const prefix = entry.level === 'info' ? '' : `${entry.level === 'warn' ? 'warning' : 'error'}: `;
  return [line(`${prefix}${entry.msg}${details.length > 0 ? ` (${details.join(', ')})` : ''}`)];
}

/** "[tor] Dec 03 18:00:00.000 [warn] Problem bootstrapping…" → "Problem bootstrapping…". */
export function torText(line: string): string {
  return line.replace(/^\[[^\]]*\]\s*/, '').replace(/^[A-Z][a-z]{2} \d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)? \[\w+\]\s*/, '');
}

/** What makes two tor warnings "the same": numbers, addresses and fingerprints do not count. */
export function warningKey(line: string): string {
  return torText(line)
    .replace(/\$?[0-9A-Fa-f]{40}(?:[~=][A-Za-z0-9]+)?/g, '<relay>')
    .replace(/\d+/g, '#');
}

export interface RepeatSummary {
  /** The first line of the window (the one forwarded). */
  line: string;
  /** How many more came within the window. */
  repeats: number;
  withinMs: number;
}

/**
 * Forwards the first of a kind of line, swallows its repeats for `windowMs`, then reports how
 * many there were (when any) and forgets it, so a steady repeat costs two lines per window.
 */
export class RepeatSummariser {
  private readonly open = new Map<string, { line: string; since: number; repeats: number }>();

  constructor(private readonly windowMs = 60_000) {}

  /** The line to forward now (undefined: a repeat), plus summaries of windows that have ended. */
  push(line: string, now: number): { forward?: string; summaries: RepeatSummary[] } {
    const summaries = this.flush(now);
    const key = warningKey(line);
    const seen = this.open.get(key);
    if (seen) {
      seen.repeats++;
      return { summaries };
    }
    this.open.set(key, { line, since: now, repeats: 0 });
    return { forward: line, summaries };
  }

  /** Summaries of the windows that ended by `now` (all of them with `all`, e.g. at exit). */
  flush(now: number, all = false): RepeatSummary[] {
    const out: RepeatSummary[] = [];
    for (const [key, w] of this.open) {
      if (!all && now - w.since < this.windowMs) continue;
      this.open.delete(key);
      if (w.repeats > 0) out.push({ line: w.line, repeats: w.repeats, withinMs: Math.min(now - w.since, this.windowMs) });
    }
    return out;
  }
}
