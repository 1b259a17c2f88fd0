/**
 * Parsers for the control replies p2pdb reads. They work on whole framed replies (framing.ts),
 * keep values whole (everything after the first '='), and undo Tor's quoting where the spec says
 * a value is a quoted string.
 */
import { fail } from '../errors.js';
import { replyText, type Reply } from './framing.js';

export interface BootstrapPhase {
  /** 0..100; 100 means Tor can build circuits. */
  progress: number;
  tag: string;
  summary: string;
  /** Present when Tor reports a bootstrap problem (severity WARN/ERR). */
  warning?: string;
}

export interface KeywordLine {
  /** Leading words before the first KEY=VALUE pair (e.g. ['NOTICE', 'BOOTSTRAP']). */
  words: string[];
  values: Record<string, string>;
}

/** Throws tor_command_failed unless the reply is 2xx. */
export function assertOk(reply: Reply, command: string): void {
  if (reply.code < 200 || reply.code >= 300) {
    fail('tor_command_failed', `${command}: ${reply.code} ${replyText(reply)}`);
  }
}

/** Undoes a control-spec QuotedString ("..." with C escapes). Unquoted input is returned as is. */
export function unquote(value: string): string {
  if (!value.startsWith('"')) return value;
  let out = '';
  for (let i = 1; i < value.length; i++) {
    const c = value[i]!;
    if (c === '"') return out;
    if (c !== '\\') {
      out += c;
      continue;
    }
    const n = value[++i] ?? '';
    const octal = /^[0-7]{1,3}/.exec(value.slice(i));
    if (octal) {
      out += String.fromCharCode(parseInt(octal[0], 8));
      i += octal[0].length - 1;
    } else {
      out += ({ n: '\n', r: '\r', t: '\t' } as Record<string, string>)[n] ?? n;
    }
  }
  fail('tor_control', `unterminated quoted string: ${value.slice(0, 80)}`);
}

/** Splits `WORD WORD KEY=VALUE KEY="quoted value"` into words and key/value pairs. */
export function parseKeywordLine(line: string): KeywordLine {
  const words: string[] = [];
  const values: Record<string, string> = {};
  const token = /\s*([^\s=]+)(?:=("(?:[^"\\]|\\.)*"|\S*))?/gy;
  let m: RegExpExecArray | null;
  while ((m = token.exec(line)) !== null && m[0].trim() !== '') {
    const [, key, raw] = m;
    if (raw === undefined) words.push(key!);
    else values[key!] = unquote(raw);
  }
  return { words, values };
}

/** The value of `status/bootstrap-phase` (or a STATUS_CLIENT BOOTSTRAP event body). */
export function parseBootstrapPhase(text: string): BootstrapPhase {
  const { words, values } = parseKeywordLine(text);
  const progress = Number(values.PROGRESS);
  if (words[1] !== 'BOOTSTRAP' || !Number.isInteger(progress)) {
    fail('tor_control', `not a bootstrap status: ${text.slice(0, 120)}`);
  }
  const phase: BootstrapPhase = { progress, tag: values.TAG ?? '', summary: values.SUMMARY ?? '' };
  if (words[0] !== 'NOTICE') {
    phase.warning = [values.WARNING, values.REASON && `reason=${values.REASON}`].filter(Boolean).join(' ') || words[0];
  }
  return phase;
}

/** The full value of `key` in a GETINFO reply: single-line values and data blocks alike. */
export function parseGetInfo(reply: Reply, key: string): string {
  assertOk(reply, `GETINFO ${key}`);
  for (const line of reply.lines) {
    const eq = line.text.indexOf('=');
    if (eq === -1 || line.text.slice(0, eq) !== key) continue;
    return line.data ?? line.text.slice(eq + 1);
  }
  fail('tor_control', `GETINFO ${key}: reply has no value for it: ${replyText(reply).slice(0, 200)}`);
}

/** Every value of `key` in a GETCONF reply; [] when the option is unset. */
export function parseGetConf(reply: Reply, key: string): string[] {
  assertOk(reply, `GETCONF ${key}`);
  const out: string[] = [];
  for (const line of reply.lines) {
    const eq = line.text.indexOf('=');
    const name = eq === -1 ? line.text : line.text.slice(0, eq);
    if (name.toLowerCase() !== key.toLowerCase()) continue;
    if (eq !== -1) out.push(unquote(line.text.slice(eq + 1)));
  }
  return out;
}

/** ServiceID and, for a new key, the base64 key blob (padding intact) from an ADD_ONION reply. */
export function parseAddOnion(reply: Reply): { serviceId: string; privateKey?: string } {
  assertOk(reply, 'ADD_ONION');
  let serviceId: string | undefined;
  let privateKey: string | undefined;
  for (const { text } of reply.lines) {
    const eq = text.indexOf('=');
    if (eq === -1) continue;
    const name = text.slice(0, eq);
    const value = text.slice(eq + 1);
    if (name === 'ServiceID') serviceId = value;
    if (name === 'PrivateKey') privateKey = value.replace(/^ED25519-V3:/, '');
  }
  if (!serviceId) fail('tor_control', `ADD_ONION reply without ServiceID: ${replyText(reply)}`);
  return privateKey === undefined ? { serviceId } : { serviceId, privateKey };
}

/** An asynchronous event: its type, the rest of its first line, and any further lines. */
export interface TorEvent {
  type: string;
  text: string;
  lines: string[];
}

export function parseEvent(reply: Reply): TorEvent {
  const first = reply.lines[0]?.text ?? '';
  const space = first.indexOf(' ');
  const type = space === -1 ? first : first.slice(0, space);
  const text = space === -1 ? '' : first.slice(space + 1);
  const lines = reply.lines.slice(1).flatMap((l) => (l.data === undefined ? [l.text] : [l.text, ...l.data.split('\n')]));
  return { type, text, lines };
}
