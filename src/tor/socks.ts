/**
 * How p2pdb dials peers: only v3 onion URLs, only through the local tor's SOCKS port, with the
 * name resolved by tor (socks5h), so no peer traffic or DNS lookup ever leaves directly.
 */
import net from 'node:net';
import { SocksProxyAgent } from 'socks-proxy-agent';
import { P2pdbError, fail } from '../errors.js';
import { onionAddressOf, publicKeyOfOnion } from '../identity/onion-key.js';

/** An http(s) Agent that sends every request through tor's SocksPort on 127.0.0.1. */
export function peerAgent(socksPort: number): SocksProxyAgent {
  if (!Number.isInteger(socksPort) || socksPort < 1 || socksPort > 65535) {
    fail('config_invalid', `bad SOCKS port ${socksPort}`);
  }
  // socks5h, not socks5: with socks5 the agent resolves the name itself and .onion fails.
  return new SocksProxyAgent(`socks5h://127.0.0.1:${socksPort}`, { keepAlive: true });
}

const ONION_HOST = /^([a-z2-7]{56})\.onion$/;

export interface OnionUrl {
  url: URL;
  /** The 56-character service id (host without .onion). */
  serviceId: string;
}

/** Returns the parsed URL when it is http(s) to a valid v3 onion; throws not_onion_url otherwise. */
export function assertOnionUrl(url: string | URL): OnionUrl {
  let parsed: URL;
  try {
    parsed = new URL(String(url));
  } catch {
    fail('not_onion_url', `not a URL: ${String(url).slice(0, 200)}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    fail('not_onion_url', `peer URL must be http(s)://<v3 onion>/, got protocol ${parsed.protocol}`);
  }
  const m = ONION_HOST.exec(parsed.hostname);
  if (!m || !isV3ServiceId(m[1]!)) {
    fail('not_onion_url', `peer URL host must be a v3 .onion name (56 base32 chars), got ${parsed.hostname}`);
  }
  if (parsed.username || parsed.password) fail('not_onion_url', 'peer URL must not carry credentials');
  return { url: parsed, serviceId: m[1]! };
}

/** A v3 service id is base32(pubkey[32] | checksum[2] | version 0x03); the checksum catches typos. */
export function isV3ServiceId(id: string): boolean {
  if (!/^[a-z2-7]{56}$/.test(id)) return false;
  try {
    publicKeyOfOnion(`${id}.onion`);
    return true;
  } catch {
    return false;
  }
}

/** The v3 service id (the address without ".onion") of an Ed25519 public key. */
export function onionServiceId(publicKey: Uint8Array): string {
  return onionAddressOf(publicKey).slice(0, -'.onion'.length);
}

/**
 * Tor's SOCKS5 replies for onion services (with `ExtendedErrors` on the SocksPort; otherwise
 * tor answers 0x01 general failure for all of them). proposal 304 / tor's socks5 extended errors.
 */
export const SOCKS_ONION_REPLIES: Record<number, string> = {
  0x00: 'succeeded',
  0x01: 'general failure',
  0x04: 'host unreachable',
  0x05: 'connection refused',
  0x06: 'TTL expired',
  0xf0: 'onion service descriptor not found',
  0xf1: 'onion service descriptor invalid',
  0xf2: 'onion service introduction failed',
  0xf3: 'onion service rendezvous failed',
  0xf4: 'onion service needs client authorization',
  0xf5: 'onion service client authorization is wrong',
  0xf6: 'onion service address invalid',
  0xf7: 'onion service introduction timed out',
};

/**
 * Opens one SOCKS5 stream to host:port through tor at 127.0.0.1:socksPort and returns tor's
 * reply code (0 = the stream was set up), closing the stream at once. Tells *why* an onion is
 * unreachable, which an HTTP agent's error message does not.
 */
export function socksConnectReply(socksPort: number, host: string, port: number, timeoutMs = 60_000, signal?: AbortSignal): Promise<number> {
  return new Promise((resolve, reject) => {
    if (host.length > 255) return reject(new P2pdbError('malformed', 'host name too long for SOCKS5'));
    const socket = net.connect(socksPort, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let stage: 'greeting' | 'reply' = 'greeting';
    const done = (err: Error | undefined, code?: number) => {
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(code!);
    };
    const timer = setTimeout(() => done(new P2pdbError('tor_timeout', `no SOCKS reply for ${host}:${port} within ${timeoutMs} ms`)), timeoutMs);
    if (signal?.aborted) return done(new P2pdbError('tor_timeout', 'SOCKS probe cancelled'));
    signal?.addEventListener('abort', () => done(new P2pdbError('tor_timeout', 'SOCKS probe cancelled')), { once: true });
    socket.once('error', (err) => done(new P2pdbError('tor_control', `SOCKS port 127.0.0.1:${socksPort}: ${err.message}`)));
    socket.once('close', () => done(new P2pdbError('tor_control', 'tor closed the SOCKS connection without a reply')));
    socket.on('connect', () => socket.write(Buffer.from([5, 1, 0])));
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (stage === 'greeting' && buf.length >= 2) {
        if (buf[0] !== 5 || buf[1] !== 0) return done(new P2pdbError('tor_control', 'SOCKS5 greeting refused'));
        buf = buf.subarray(2);
        stage = 'reply';
        const name = Buffer.from(host, 'latin1');
        socket.write(Buffer.concat([Buffer.from([5, 1, 0, 3, name.length]), name, Buffer.from([port >> 8, port & 255])]));
      } else if (stage === 'reply' && buf.length >= 2) {
        done(undefined, buf[1]!);
      }
    });
  });
}
