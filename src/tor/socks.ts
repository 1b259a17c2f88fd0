/**
 * How p2pdb dials peers: only v3 onion URLs, only through the local tor's SOCKS port, with the
 * name resolved by tor (socks5h), so no peer traffic or DNS lookup ever leaves directly.
 */
import { SocksProxyAgent } from 'socks-proxy-agent';
import { fail } from '../errors.js';
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
