/**
 * Is the node of a data directory running? Asked by commands that must not run beside it
 * (`p2pdb db copy`). A running node answers on two listeners it names in advance: its HTTP
 * port from its config, and, with Tor on, its local control listener from DATA/status.json
 * (that file stays behind when the node stops, so only an answer counts, never the file).
 * The database-level checks (src/store/copy/sqlite.ts, postgres.ts) are the stronger ones;
 * this catches a node they cannot see, e.g. one on PostgreSQL whose idle pool holds no
 * connection.
 */
import type { NodeConfig } from '../config/config.js';
import { readNodeStatus } from './status-file.js';

const PROBE_TIMEOUT_MS = 1500;

type Fetch = (url: string, init?: RequestInit) => Promise<Response>;

async function answers(fetchFn: Fetch, url: string): Promise<Response | undefined> {
  try {
    return await fetchFn(url, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
  } catch {
    return undefined;
  }
}

/** Why the node of `config.dataDir` looks alive, or undefined when nothing answers for it. */
export async function runningNode(config: NodeConfig, fetchFn: Fetch = globalThis.fetch): Promise<string | undefined> {
  const status = readNodeStatus(config.dataDir);
  if (status?.control && (await answers(fetchFn, status.control.url))) {
    return `its local control listener ${status.control.url} (from ${config.dataDir}/status.json) answers`;
  }
  if (config.port === 0) return undefined; // a port chosen at start is named nowhere
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const res = await answers(fetchFn, `http://${host}:${config.port}/hello/`);
  if (!res?.ok) return undefined;
  const hello = (await res.json().catch(() => null)) as { protocol?: unknown; onion?: unknown } | null;
  if (typeof hello?.protocol !== 'string') return undefined; // not a p2pdb node
  // Another node on the same port is not this one, when the onion addresses tell them apart.
  if (status?.onion && typeof hello.onion === 'string' && hello.onion !== status.onion) return undefined;
  return `a p2pdb node answers on its port ${host}:${config.port}`;
}
