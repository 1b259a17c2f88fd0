/**
 * /hello/: what this node is and which peers it has reached itself (GET), and the signed
 * handshake by which peers prove their key (POST). A POST does not get the sender listed: the
 * peering loop greets it back, and it is listed once that succeeds (peer-list.ts).
 */
import Router from '@koa/router';
import type { NodeConfig } from '../../config/config.js';
import { fail } from '../../errors.js';
import type { OnionIdentity } from '../../identity/onion-key.js';
import type { HelloJson } from '../../entry/json.js';
import { checkSignedHello, makeSignedHello, MAX_HELLO_BODY_BYTES, HELLO_PROTOCOL } from '../../peers/hello.js';
import { HelloThrottle } from '../../peers/hello-throttle.js';
import { parseTablesQuery, selectPeers, type PeerSummary } from '../../peers/peer-list.js';
import type { PeerTable } from '../../store/peer-table.js';
import { readBody } from '../body.js';

export const PROTOCOL = HELLO_PROTOCOL;

/** The node's own part of the /hello/ answer; the routes add the peers. */
export type HelloInfo = Omit<HelloJson, 'peers'>;

export function helloInfo(config: NodeConfig, software: string, onion?: string): HelloInfo {
  return {
    protocol: PROTOCOL,
    ...(onion !== undefined ? { onion } : {}),
    software,
    tables: config.allowedTables,
    pow_bits: config.powBits,
    limits: {
      max_payload_bytes: config.maxPayloadBytes,
      max_body_bytes: config.maxBodyBytes,
      max_batch_entries: config.maxBatchEntries,
      max_future_skew_ms: config.maxFutureSkewMs,
    },
  };
}

export interface HelloRouteDeps {
  info: HelloInfo;
  /** The node's onion identity; null when Tor is off (then POST /hello/ answers tor_off). */
  identity: OnionIdentity | null;
  /** null: no peer table (GET lists no peers, POST answers tor_off). */
  peerStore: PeerTable | null;
  clock?: () => number;
  /** Limits on what inbound hellos may write; defaults in HELLO_THROTTLE_DEFAULTS. */
  throttle?: HelloThrottle;
}

export function helloRoutes(deps: HelloRouteDeps): Router {
  const { info, identity, peerStore } = deps;
  const clock = deps.clock ?? Date.now;
  const throttle = deps.throttle ?? new HelloThrottle();
  const self = identity ? { onion: identity.address } : {};

  async function peers(wanted: string[] | undefined, exclude?: string): Promise<PeerSummary[]> {
    if (!peerStore) return [];
    // Only peers we reached ourselves (PeerTable.listable says why).
    const all = await peerStore.listable();
    return selectPeers(exclude ? all.filter((p) => p.onion !== exclude) : all, wanted);
  }

  const router = new Router();
  router.get('/hello/', async (ctx) => {
    const wanted = parseTablesQuery(ctx.query.tables);
    ctx.body = { ...info, ...self, peers: await peers(wanted) };
  });

  router.post('/hello/', async (ctx) => {
    if (!identity || !peerStore) fail('tor_off', 'this node runs without Tor: it has no onion address to be greeted at');
    if (!ctx.is('application/json')) fail('unsupported_media_type', 'POST /hello/ takes application/json');
    const raw = await readBody(ctx.req, MAX_HELLO_BODY_BYTES);
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      fail('malformed', 'the body is not valid JSON');
    }
    const now = clock();
    const hello = checkSignedHello(body, { self: identity.address, now });
    // What we would write; the same again within the refresh interval is not written again.
    const description = JSON.stringify([hello.tables, hello.pow_bits, hello.protocol, hello.software]);
    if (!throttle.recentlyWritten(hello.onion, description, now)) {
      if (!(await peerStore.get(hello.onion))) throttle.admitNewPeer(now);
      await peerStore.recordInboundHello(hello, now);
      throttle.written(hello.onion, description, now);
    }
    // Our answer is a hello addressed to the caller, so it can check who answered and when.
    const reply = makeSignedHello(identity, hello.onion, info, now);
    ctx.body = { ...info, ...self, peers: await peers(undefined, hello.onion), hello: reply.hello, signature: reply.signature };
  });
  return router;
}
