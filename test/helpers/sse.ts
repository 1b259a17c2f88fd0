/** A raw SSE reader for route tests: its own small parser, so the wire format is checked independently of the library's. */
import http from 'node:http';
import { waitFor } from '../../src/tor/wait.js';

export interface RawEvent {
  id?: string;
  event?: string;
  data: string;
}

export interface RawStream {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** Everything received so far, verbatim. */
  text(): string;
  events(): RawEvent[];
  /** Entry events parsed: their data objects. */
  entries(): { seq: string; id: string; [k: string]: unknown }[];
  closed(): boolean;
  waitForEntries(n: number, timeoutMs?: number): Promise<void>;
  close(): void;
  req: http.ClientRequest;
  res: http.IncomingMessage;
}

function parseEvents(text: string): RawEvent[] {
  const out: RawEvent[] = [];
  for (const block of text.split('\n\n').slice(0, -1)) {
    const ev: RawEvent = { data: '' };
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith(':') || line === '') continue;
      const i = line.indexOf(': ');
      const [field, value] = i < 0 ? [line, ''] : [line.slice(0, i), line.slice(i + 2)];
      if (field === 'id') ev.id = value;
      else if (field === 'event') ev.event = value;
      else if (field === 'data') data.push(value);
    }
    if (data.length === 0) continue;
    ev.data = data.join('\n');
    out.push(ev);
  }
  return out;
}

/** Opens GET url; resolves once the answer's headers are in (for a 200, the stream is live). */
export function openStream(url: string, headers: Record<string, string> = {}): Promise<RawStream> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { accept: 'text/event-stream', ...headers } });
    req.on('error', reject);
    req.on('response', (res) => {
      let text = '';
      let closed = false;
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('close', () => (closed = true));
      res.on('error', () => (closed = true));
      req.on('error', () => (closed = true));
      const stream: RawStream = {
        status: res.statusCode ?? 0,
        headers: res.headers,
        text: () => text,
        events: () => parseEvents(text),
        entries: () => parseEvents(text).filter((e) => e.event === 'entry').map((e) => JSON.parse(e.data)),
        closed: () => closed,
        waitForEntries: (n, timeoutMs = 20_000) =>
          waitFor(() => stream.entries().length >= n, { timeoutMs, intervalMs: 10, what: `${n} entries on ${url}` }).then(() => undefined),
        close: () => req.destroy(),
        req,
        res,
      };
      resolve(stream);
    });
  });
}
