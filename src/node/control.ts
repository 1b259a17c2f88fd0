/**
 * The local control listener: a second HTTP server on 127.0.0.1 (random port), never published
 * to Tor, for commands from this machine's CLI (`p2pdb sync PEER`). The public port is the
 * onion service, so admin routes never go there. Every request needs the random bearer token
 * the node writes, with the port, to DATA/status.json (mode 0600).
 *
 *   POST /control/sync {"peer": ONION} → application/x-ndjson, one line per progress step:
 *     {"type":"progress", ...SyncProgress}, then {"type":"report", ...SyncReport}
 *     or {"type":"error","code","message"}.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isP2pdbError } from '../errors.js';
import { readBody } from '../http/body.js';
import type { SyncProgress, SyncReport } from '../sync/session.js';
import type { Logger } from '../util/log.js';

export interface ControlTarget {
  syncNow(onion: string, opts: { onProgress?(p: SyncProgress): void; signal?: AbortSignal }): Promise<SyncReport>;
}

export interface ControlListener {
  url: string;
  token: string;
  close(): Promise<void>;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

function authorized(req: IncomingMessage, token: string): boolean {
  const header = req.headers.authorization ?? '';
  const m = /^Bearer ([0-9a-f]{64})$/.exec(header);
  return m !== null && timingSafeEqual(Buffer.from(m[1]!, 'hex'), Buffer.from(token, 'hex'));
}

export async function startControlListener(target: ControlTarget, log: Logger): Promise<ControlListener> {
  const token = randomBytes(32).toString('hex');
  const server: Server = createServer((req, res) => {
    void handle(req, res).catch((err: Error) => {
      log.warn('control request failed', { error: err.message });
      if (!res.headersSent) send(res, 500, { error: { code: 'internal', message: 'internal error' } });
      else res.end();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!authorized(req, token)) return send(res, 401, { error: { code: 'unauthorized', message: 'a bearer token from DATA/status.json is required' } });
    const url = new URL(req.url ?? '/', 'http://control');
    if (url.pathname !== '/control/sync') return send(res, 404, { error: { code: 'not_found', message: `no route for ${req.method} ${url.pathname}` } });
    if (req.method !== 'POST') return send(res, 405, { error: { code: 'method_not_allowed', message: 'use POST' } });
    let peer: unknown;
    try {
      peer = (JSON.parse((await readBody(req, 4096)).toString('utf8')) as { peer?: unknown } | null)?.peer;
    } catch (e) {
      const err = isP2pdbError(e) ? e : undefined;
      return send(res, err?.status ?? 400, { error: { code: err?.code ?? 'malformed', message: err?.message ?? 'body must be {"peer": ONION}' } });
    }
    if (typeof peer !== 'string') return send(res, 400, { error: { code: 'malformed', message: 'body must be {"peer": ONION}' } });
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
    const abort = new AbortController();
    // The CLI went away (Ctrl-C): stop the session it asked for.
    res.on('close', () => {
      if (!res.writableFinished) abort.abort();
    });
    const line = (o: unknown) => res.write(JSON.stringify(o) + '\n');
    try {
      const report = await target.syncNow(peer, { onProgress: (p) => line({ type: 'progress', ...p }), signal: abort.signal });
      line({ type: 'report', ...report });
    } catch (e) {
      line({ type: 'error', code: isP2pdbError(e) ? e.code : 'internal', message: (e as Error).message });
    }
    res.end();
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.headersTimeout = 10_000;
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    token,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
