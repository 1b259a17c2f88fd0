/**
 * Tor control-protocol reply framing: bytes in, complete replies out.
 *
 * A reply is a run of lines "CODE-text" (more follows), "CODE+text" (a data block follows,
 * ended by a line "." with leading dots doubled) and one final "CODE text". Socket chunks can
 * end anywhere, even inside a UTF-8 sequence, so everything is buffered until a reply is whole.
 */
import { StringDecoder } from 'node:string_decoder';
import { fail } from '../errors.js';

export interface ReplyLine {
  code: number;
  /** '-' mid line, '+' line followed by a data block, ' ' final line. */
  sep: '-' | '+' | ' ';
  text: string;
  /** The data block of a '+' line, dot-unstuffed, lines joined with '\n'. */
  data?: string;
}

export interface Reply {
  /** Status code of the final line. */
  code: number;
  lines: ReplyLine[];
}

const STATUS_LINE = /^(\d{3})([ +-])(.*)$/s;
/** A reply larger than this is a broken peer, not a real answer (config-text is a few KiB). */
const MAX_BUFFERED = 16 * 1024 * 1024;

export class ReplyFramer {
  private readonly decoder = new StringDecoder('utf8');
  private pendingText = '';
  private lines: ReplyLine[] = [];
  private dataLine: ReplyLine | null = null;
  private dataLines: string[] = [];
  private buffered = 0;

  /** Feeds one chunk; returns the replies it completed, in order. Throws tor_control on garbage. */
  push(chunk: Buffer): Reply[] {
    this.pendingText += this.decoder.write(chunk);
    const out: Reply[] = [];
    let nl: number;
    while ((nl = this.pendingText.indexOf('\n')) !== -1) {
      let line = this.pendingText.slice(0, nl);
      this.pendingText = this.pendingText.slice(nl + 1);
      if (line.endsWith('\r')) line = line.slice(0, -1);
      const reply = this.takeLine(line);
      if (reply) out.push(reply);
    }
    if (this.buffered + this.pendingText.length > MAX_BUFFERED) {
      fail('tor_control', 'control reply exceeds 16 MiB');
    }
    return out;
  }

  private takeLine(line: string): Reply | null {
    this.buffered += line.length + 2;
    if (this.dataLine) {
      if (line === '.') {
        this.dataLine.data = this.dataLines.join('\n');
        this.dataLine = null;
        this.dataLines = [];
      } else {
        this.dataLines.push(line.startsWith('.') ? line.slice(1) : line);
      }
      return null;
    }
    const m = STATUS_LINE.exec(line);
    if (!m) fail('tor_control', `malformed control reply line: ${JSON.stringify(line.slice(0, 80))}`);
    const parsed: ReplyLine = { code: Number(m[1]), sep: m[2] as ReplyLine['sep'], text: m[3] ?? '' };
    this.lines.push(parsed);
    if (parsed.sep === '+') {
      this.dataLine = parsed;
      return null;
    }
    if (parsed.sep === '-') return null;
    const reply: Reply = { code: parsed.code, lines: this.lines };
    this.lines = [];
    this.buffered = 0;
    return reply;
  }
}

/** The reply as text, data blocks included, for error messages and logs. */
export function replyText(reply: Reply): string {
  return reply.lines.map((l) => (l.data === undefined ? l.text : `${l.text}\n${l.data}`)).join('\n');
}
