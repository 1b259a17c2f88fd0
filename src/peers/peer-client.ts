/**
 * Every request to a peer goes through here (hello now, sync later): the URL must be a v3
 * onion (assertOnionUrl) and the connection must go through tor's SOCKS port (a SOCKS agent,
 * names resolved by tor). There is no direct path: no agent, no request; a name lookup is
 * refused even if an agent were misconfigured to resolve locally.
 */
import http from 'node:http';
import { SocksProxyAgent } from 'socks-proxy-agent';
import { P2pdbError, fail, type ErrorCode } from '../errors.js';
import { assertOnionUrl } from '../tor/socks.js';
import { readLimitedBody } from '../util/limited-body.js';
import type { SignedHello } from './hello.js';

export const PEER_REQUEST_TIMEOUT_MS = 60_000;
/** A /hello/ answer lists at most 100 peers of at most 1,000 tables each: ~7 MB at worst. */
export const MAX_PEER_ANSWER_BYTES = 8 * 1024 * 1024;

/** The peer answered with an error; `remoteCode` is the code it gave (untrusted, for logs). */
export class PeerRefusedError extends P2pdbError {
  constructor(
    message: string,
    readonly remoteStatus: number,
    readonly remoteCode: string | undefined,
  ) {
    super('peer_refused', message);
  }
}

export interface PeerClientOptions {
  /** The SOCKS agent (peerAgent from src/tor/socks.ts). */
  agent: http.Agent;
  timeoutMs?: number;
  maxAnswerBytes?: number;
}

export interface PeerRequest {
  method?: 'GET' | 'POST';
  /** Sent as application/json. */
  json?: unknown;
  signal?: AbortSignal;
  timeoutMs?: number;
}

export interface RawPeerRequest {
  method?: 'GET' | 'POST';
  body?: Buffer;
  /** Of the body; default application/octet-stream. */
  contentType?: string;
  accept?: string;
  signal?: AbortSignal;
  timeoutMs?: number;
  maxAnswerBytes?: number;
}

export interface RawPeerAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export interface PeerAnswer {
  status: number;
  body: unknown;
}

const refuseLookup = (host: string, _opts: unknown, cb: (err: Error) => void): void =>
  cb(Object.assign(new Error(`refusing to resolve ${host} locally: peers are dialed through tor only`), { code: 'ENOTFOUND' }));

export class PeerClient {
  private readonly agent: http.Agent;
  private readonly timeoutMs: number;
  private readonly maxAnswerBytes: number;

  constructor(opts: PeerClientOptions) {
    // Only a SOCKS agent: any other agent (or none) would connect to the peer directly.
    if (!(opts.agent instanceof SocksProxyAgent)) fail('config_invalid', 'peer requests need the SOCKS agent (peerAgent)');
    this.agent = opts.agent;
    this.timeoutMs = opts.timeoutMs ?? PEER_REQUEST_TIMEOUT_MS;
    this.maxAnswerBytes = opts.maxAnswerBytes ?? MAX_PEER_ANSWER_BYTES;
  }

  /** One JSON request to http://ONION/PATH; resolves with any HTTP status, rejects with peer_unreachable or peer_bad_answer. */
  async request(onion: string, pathAndQuery: string, req: PeerRequest = {}): Promise<PeerAnswer> {
    const answer = await this.requestRaw(onion, pathAndQuery, {
      method: req.method ?? 'GET',
      accept: 'application/json',
      ...(req.json === undefined ? {} : { body: Buffer.from(JSON.stringify(req.json), 'utf8'), contentType: 'application/json' }),
      ...(req.signal ? { signal: req.signal } : {}),
      ...(req.timeoutMs ? { timeoutMs: req.timeoutMs } : {}),
    });
    try {
      return { status: answer.status, body: JSON.parse(answer.body.toString('utf8')) as unknown };
    } catch {
      throw new P2pdbError('peer_bad_answer', `${req.method ?? 'GET'} ${onion}${pathAndQuery.split('?')[0]}: answer ${answer.status} is not JSON`);
    }
  }

  /**
   * Every peer request goes through here (request() adds JSON on top): onion URL only, SOCKS
   * agent only, no local name lookup, a deadline and a bound on the answer's size. Raw body and
   * raw answer (binary sync messages, NDJSON pages); resolves with any HTTP status.
   */
  async requestRaw(onion: string, pathAndQuery: string, req: RawPeerRequest = {}): Promise<RawPeerAnswer> {
    if (!pathAndQuery.startsWith('/')) fail('bad_request', 'a peer path starts with /');
    const { url } = assertOnionUrl(`http://${onion}${pathAndQuery}`);
    const timeoutMs = req.timeoutMs ?? this.timeoutMs;
    const maxBytes = req.maxAnswerBytes ?? this.maxAnswerBytes;
    const method = req.method ?? (req.body ? 'POST' : 'GET');
    const what = `${method} ${url.host}${url.pathname}`;
    return await new Promise<RawPeerAnswer>((resolve, reject) => {
      let settled = false;
      const finish = (err: P2pdbError | undefined, answer?: RawPeerAnswer) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req.signal?.removeEventListener('abort', onAbort);
        if (err) {
          request.destroy();
          reject(err);
        } else resolve(answer!);
      };
      const unreachable = (cause: unknown, detail: string) =>
        finish(Object.assign(new P2pdbError('peer_unreachable', `${what}: ${detail}`), { cause }));
      const request = http.request(url, {
        agent: this.agent,
        method,
        lookup: refuseLookup as unknown as typeof import('node:dns').lookup,
        headers: {
          accept: req.accept ?? '*/*',
          ...(req.body ? { 'content-type': req.contentType ?? 'application/octet-stream', 'content-length': String(req.body.length) } : {}),
        },
      });
      const timer = setTimeout(() => unreachable(undefined, `no complete answer within ${timeoutMs} ms`), timeoutMs);
      const onAbort = () => unreachable(req.signal?.reason, 'aborted');
      if (req.signal?.aborted) return onAbort();
      req.signal?.addEventListener('abort', onAbort, { once: true });
      request.on('error', (err: NodeJS.ErrnoException) => unreachable(err, err.code ? `${err.code} ${err.message}` : err.message));
      request.on('response', (res) => {
        const tooLarge = () => new P2pdbError('peer_bad_answer', `${what}: answer larger than ${maxBytes} bytes`);
        readLimitedBody(res, maxBytes, tooLarge).then(
          (body) => finish(undefined, { status: res.statusCode ?? 0, headers: res.headers, body }),
          (err: Error) => (err instanceof P2pdbError ? finish(err) : unreachable(err, `answer interrupted: ${err.message}`)),
        );
      });
      request.end(req.body);
    });
  }

  /** POST /hello/; resolves with the answer body of a 200, rejects with peer_refused for an error answer. */
  async postHello(onion: string, signed: SignedHello, signal?: AbortSignal): Promise<Record<string, unknown>> {
    return okBody(await this.request(onion, '/hello/', { method: 'POST', json: signed, ...(signal ? { signal } : {}) }), onion);
  }

  /** GET /hello/ (optionally ?tables=fp,fp). */
  async getHello(onion: string, tables?: readonly string[], signal?: AbortSignal): Promise<Record<string, unknown>> {
    const query = tables ? `?tables=${tables.map(encodeURIComponent).join(',')}` : '';
    return okBody(await this.request(onion, `/hello/${query}`, signal ? { signal } : {}), onion);
  }
}

function okBody(answer: PeerAnswer, onion: string): Record<string, unknown> {
  const body = answer.body;
  if (answer.status !== 200) {
    const error = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
    const code = typeof error?.code === 'string' ? error.code.slice(0, 64) : undefined;
    const message = typeof error?.message === 'string' ? error.message.slice(0, 300) : '';
    throw new PeerRefusedError(`${onion} answered ${answer.status}${code ? ` ${code}` : ''}${message ? `: ${message}` : ''}`, answer.status, code);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) fail('peer_bad_answer', `${onion} answered something other than a JSON object`);
  return body as Record<string, unknown>;
}

/** The code a failed peer call is filed under (for logs and counters). */
export function peerErrorCode(err: unknown): ErrorCode | 'unknown' {
  return err instanceof P2pdbError ? err.code : 'unknown';
}
