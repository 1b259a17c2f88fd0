/**
 * The private Tor network for tests. With P2PDB_TESTNET set (path of the JSON file
 * scripts/testnet-up.ts writes), every test file attaches to that one running network;
 * otherwise the first useTestnet() in a file starts a network for that file alone.
 * Either way, client tors started through it are stopped after the file's tests.
 * P2PDB_TOR_LOG=1 prints every tor's log lines to stderr.
 */
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { after } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { P2pdbError } from '../../src/errors.js';
import { attachTestnet, readTestnetDescription, startTestnet, type Testnet } from '../../src/tor/testnet.js';

export interface TestTestnet extends Testnet {
  /** True when attached to a network another process runs (P2PDB_TESTNET). */
  attached: boolean;
  /** Date.now() when this file began starting or attaching, and when the network was usable. */
  startedAt: number;
  readyAt: number;
}

let shared: Promise<TestTestnet> | undefined;

/**
 * scripts/run-tests.mjs starts the shared network beside the first tests, so a file may get
 * here before it is usable: wait for its description file, or for the error written next to it.
 */
async function sharedNetworkReady(file: string, timeoutMs = 240_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (existsSync(file + '.error')) throw new P2pdbError('tor_process', readFileSync(file + '.error', 'utf8'));
    if (existsSync(file)) return file;
    if (Date.now() > deadline) throw new P2pdbError('tor_timeout', `the shared test network did not come up within ${timeoutMs} ms`);
    await delay(250);
  }
}

/** Call at the top level of a test file (it registers an after() hook there); memoized per file. */
export function useTestnet(): Promise<TestTestnet> {
  if (shared) return shared;
  const startedAt = Date.now();
  const log = process.env.P2PDB_TOR_LOG ? (line: string) => process.stderr.write(line + '\n') : undefined;
  const file = process.env.P2PDB_TESTNET;
  shared = (async () => {
    const net = file
      ? await attachTestnet(await readTestnetDescription(await sharedNetworkReady(file)), log ? { log } : {})
      : await startTestnet(log ? { log } : {});
    return Object.assign(net, { attached: Boolean(file), startedAt, readyAt: Date.now() });
  })();
  const started = shared;
  after(async () => {
    const net = await started.catch(() => undefined);
    await net?.stop();
  });
  return shared;
}

export interface HttpAnswer {
  status: number;
  body: string;
}

/** One GET through `agent`; rejects on any socket or SOCKS error. */
export function httpGet(url: string, agent: http.Agent, timeoutMs = 60_000): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new P2pdbError('tor_timeout', `GET ${url} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/**
 * Retries a GET until the onion answers: right after publication the descriptor may not be on
 * every HSDir yet and the first circuits can fail. Each failure is followed by a short pause
 * that grows, so a slow network is not hammered.
 */
export async function waitForOnionAnswer(url: string, agent: http.Agent, timeoutMs = 120_000): Promise<HttpAnswer & { attempts: number }> {
  const deadline = Date.now() + timeoutMs;
  let pause = 250;
  let lastError: unknown;
  for (let attempts = 1; ; attempts++) {
    try {
      const answer = await httpGet(url, agent, Math.max(1, deadline - Date.now()));
      return { ...answer, attempts };
    } catch (err) {
      lastError = err;
    }
    if (Date.now() + pause >= deadline) {
      throw new P2pdbError('tor_timeout', `${url} did not answer within ${timeoutMs} ms after ${attempts} attempts: ${String(lastError)}`);
    }
    await delay(pause);
    pause = Math.min(pause * 2, 2_000);
  }
}

/** Rejects with tor_timeout when `p` has not settled within `ms`. */
export async function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new P2pdbError('tor_timeout', `no ${what} within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
