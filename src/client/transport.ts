/**
 * How the client reaches a node: directly on loopback, or through a SOCKS agent. An onion URL
 * is only ever dialled through a SOCKS agent that lets tor resolve the name (socks5h), and
 * local name lookups are refused outright, as src/peers/peer-client.ts does for peers.
 */
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { SocksProxyAgent } from 'socks-proxy-agent';
import { P2pdbError, fail } from '../errors.js';
import { assertOnionUrl } from '../tor/socks.js';
import { readLimitedBody } from '../util/limited-body.js';
import type { FetchFunction } from './node-api.js';

export interface Route {
  agent: http.Agent | undefined;
  /** Set for onion URLs: a lookup that always fails, so no name ever reaches local DNS. */
  lookup: LookupFunction | undefined;
}

const refuseLookup = ((host: string, _opts: unknown, cb: (err: Error) => void) =>
  cb(Object.assign(new Error(`refusing to resolve ${host} locally: onion addresses are reached through tor only`), { code: 'ENOTFOUND' }))) as unknown as LookupFunction;

export function isOnionUrl(url: URL): boolean {
  return url.hostname.endsWith('.onion');
}

/** Checks the URL against the agent: an onion needs a socks5h agent; throws config_invalid / not_onion_url. */
export function routeFor(url: URL, agent: http.Agent | undefined): Route {
  if (!isOnionUrl(url)) return { agent, lookup: undefined };
  assertOnionUrl(url);
  if (!(agent instanceof SocksProxyAgent)) {
    fail('config_invalid', `${url.host} is an onion address: pass a SOCKS agent to tor's SocksPort (option agent, e.g. peerAgent(9050))`);
  }
  if (agent.shouldLookup) fail('config_invalid', 'the SOCKS agent resolves names locally (socks5://): use socks5h:// so tor resolves the onion');
  return { agent, lookup: refuseLookup };
}

/** Largest answer body a client reads for a JSON request (a /get/ page is far smaller). */
export const MAX_ANSWER_BYTES = 64 * 1024 * 1024;

/**
 * A fetch over node:http with an agent (global fetch takes no agent). Enough of fetch for
 * NodeApi: method, headers, a string body, signal; the answer as a Response.
 */
export function agentFetch(agent: http.Agent | undefined, maxAnswerBytes = MAX_ANSWER_BYTES): FetchFunction {
  const fn = (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
    const route = routeFor(url, agent);
    const headers = Object.fromEntries(new Headers(init.headers).entries());
    const body = typeof init.body === 'string' ? Buffer.from(init.body, 'utf8') : undefined;
    if (init.body !== undefined && init.body !== null && body === undefined) fail('internal', 'agentFetch sends string bodies only');
    if (body) headers['content-length'] = String(body.length);
    const lib = url.protocol === 'https:' ? https : http;
    return new Promise<Response>((resolve, reject) => {
      const req = lib.request(url, {
        method: init.method ?? 'GET',
        headers,
        ...(route.agent ? { agent: route.agent } : {}),
        ...(route.lookup ? { lookup: route.lookup } : {}),
        ...(init.signal ? { signal: init.signal } : {}),
      });
      req.on('error', (e) => reject(init.signal?.aborted ? init.signal.reason ?? e : new TypeError('fetch failed', { cause: e })));
      req.on('response', (res) => {
        const tooLarge = () => new P2pdbError('malformed', `${url.host} answered with more than ${maxAnswerBytes} bytes`);
        readLimitedBody(res, maxAnswerBytes, tooLarge).then(
          (answer) => {
            const h = new Headers();
            for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') h.set(k, v);
            const status = res.statusCode ?? 502;
            const nullBody = status === 204 || status === 205 || status === 304;
            resolve(new Response(nullBody ? null : answer, { status, headers: h }));
          },
          (e: Error) => {
            // Oversize: ours, stop the transfer. Cut off: fetch's own error, with the cause.
            if (e instanceof P2pdbError) {
              req.destroy();
              reject(e);
            } else reject(new TypeError('fetch failed', { cause: e }));
          },
        );
      });
      req.end(body);
    });
  };
  return fn as FetchFunction;
}
