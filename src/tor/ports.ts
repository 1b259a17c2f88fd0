/**
 * Free TCP ports on 127.0.0.1 for tor's listeners.
 *
 * A port is probed by binding it, then released for tor to bind. Ports are drawn from below
 * the kernel's ephemeral range on purpose: the kernel hands ephemeral ports to every outgoing
 * connection and every listen(0), so a probed-and-released ephemeral port can be taken by any
 * connection on the machine before tor binds it (CI saw exactly that while tests ran in
 * parallel). Below the range only another explicit chooser can collide, and callers retry on
 * PortInUse (see isPortClash).
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { P2pdbError } from '../errors.js';

const LOWEST = 10_000;

/** [low, high] of the kernel's ephemeral range (Linux default 32768-60999). */
function ephemeralRange(): [number, number] {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (low && high && low <= high) return [low, high];
  } catch {
    // not Linux: use the IANA dynamic range
  }
  return [49152, 65535];
}

/** The range ports are drawn from: below the ephemeral range, or above it when below is too small. */
export function portPool(range = ephemeralRange()): [number, number] {
  const [low, high] = range;
  if (low - 1 - LOWEST >= 2_000) return [LOWEST, low - 1];
  if (65535 - high >= 2_000) return [high + 1, 65535];
  return [LOWEST, 65535];
}

function tryBind(port: number): Promise<net.Server | undefined> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(undefined));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => resolve(server));
  });
}

/** `count` distinct ports that were free a moment ago (all held at once while probing). */
export async function freePorts(count: number): Promise<number[]> {
  const [from, to] = portPool();
  const held: net.Server[] = [];
  try {
    for (let attempts = 0; held.length < count; attempts++) {
      if (attempts > count * 50) throw new P2pdbError('tor_port_in_use', `no ${count} free ports on 127.0.0.1 in ${from}-${to}`);
      const port = from + Math.floor(Math.random() * (to - from + 1));
      const server = await tryBind(port);
      if (server) held.push(server);
    }
    return held.map((s) => (s.address() as net.AddressInfo).port);
  } finally {
    await Promise.all(held.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

export async function freePort(): Promise<number> {
  return (await freePorts(1))[0]!;
}

/** True for the error a tor start gives when a port was taken between probe and bind. */
export function isPortClash(err: unknown): boolean {
  return err instanceof P2pdbError && err.code === 'tor_port_in_use';
}

/** Runs `attempt` again (fresh ports are the caller's business) while it fails on a port clash. */
export async function retryOnPortClash<T>(attempt: (n: number) => Promise<T>, attempts = 4): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (err) {
      if (!isPortClash(err) || n >= attempts) throw err;
    }
  }
}
