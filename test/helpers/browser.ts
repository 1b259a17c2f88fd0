/**
 * Driving Debian's chromium with playwright-core (never a downloaded browser), one fresh
 * profile per scenario, with every request the browser makes recorded; a loopback recording
 * proxy in front of the node for the bytes that really reach it; and a search for private key
 * material in all of those, in the node's files and in its log.
 */
import { createDecipheriv, createHash, createPrivateKey, createPublicKey, pbkdf2Sync, type KeyObject } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page, type Request } from 'playwright-core';

export const CHROMIUM = process.env.P2PDB_CHROMIUM ?? '/usr/bin/chromium';

/** Why the browser tests cannot run here, or undefined when they can. */
export function chromiumMissing(): string | undefined {
  return existsSync(CHROMIUM)
    ? undefined
    : `${CHROMIUM} is missing: run 'apt-get install -y chromium' (scripts/bootstrap.sh does it as root unless P2PDB_SKIP_BROWSER_INSTALL=1)`;
}

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

export interface RecordedRequest {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: Buffer | null;
  navigation: boolean;
}

export interface BrowserSession {
  context: BrowserContext;
  page: Page;
  requests: RecordedRequest[];
  /** Page errors and console errors, for failure messages. */
  problems: string[];
  close(): Promise<void>;
}

/** Disables WebCrypto in the page as a non-secure context would (http://x.onion in plain Chromium). */
export const NO_WEBCRYPTO = `Object.defineProperty(Crypto.prototype, 'subtle', { get() { return undefined; }, configurable: true });`;
/** Removes WebAssembly from the page (Tor Browser's Safer level); pair with --js-flags=--noexpose_wasm for workers. */
export const NO_WASM = `delete globalThis.WebAssembly;`;

export async function openBrowser(opts: { args?: string[]; initScripts?: string[] } = {}): Promise<BrowserSession> {
  const profile = mkdtempSync(path.join(tmpdir(), 'p2pdb-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_ARGS, ...(opts.args ?? [])],
    // Nothing but what the test asks for: no proxy from the environment, no downloads.
    env: { HOME: profile, PATH: process.env.PATH ?? '/usr/bin:/bin' },
    acceptDownloads: false,
  });
  for (const script of opts.initScripts ?? []) await context.addInitScript(script);
  const requests: RecordedRequest[] = [];
  const pending: Promise<void>[] = [];
  const record = (r: Request) => {
    pending.push(
      (async () => {
        const headers = await r.allHeaders().catch(() => r.headers());
        requests.push({ url: r.url(), method: r.method(), headers, body: r.postDataBuffer(), navigation: r.isNavigationRequest() });
      })(),
    );
  };
  context.on('request', record);
  const page = context.pages()[0] ?? (await context.newPage());
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  return {
    context,
    page,
    requests,
    problems,
    async close() {
      await Promise.allSettled(pending);
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * The request as it goes on the wire: a URL fragment is never sent (and Playwright reports a
 * navigation's URL with it), so it is cut off; everything else is kept.
 */
export function wireText(r: RecordedRequest): string {
  const url = r.url.replace(/#.*$/, '');
  return [`${r.method} ${url}`, ...Object.entries(r.headers).map(([k, v]) => `${k}: ${v}`), r.body ? r.body.toString('latin1') : ''].join('\n');
}

/** A TCP proxy on loopback that records every byte clients send to `targetPort`. */
export async function recordingProxy(targetPort: number): Promise<{ port: number; origin: string; sent(): Buffer; close(): Promise<void> }> {
  const chunks: Buffer[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    client.on('data', (d) => chunks.push(Buffer.from(d)));
    client.pipe(upstream).pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    origin: `http://127.0.0.1:${port}`,
    sent: () => Buffer.concat(chunks),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

// --- private key material and where to look for it ---

export interface Secret {
  what: string;
  /** Text forms (searched in text and in binary files as latin1). */
  texts: string[];
  /** Raw byte forms (searched in binary files). */
  bytes: Buffer[];
}

/** Every form of a private key that must never leave the browser: PKCS#8 DER/PEM and d, p, q, dp, dq, qi. */
export function secretForms(key: KeyObject, what: string): Secret {
  const der = key.export({ type: 'pkcs8', format: 'der' });
  const jwk = key.export({ format: 'jwk' });
  const texts = new Set<string>();
  const bytes: Buffer[] = [];
  // Windows of 48 characters every 24 over each encoding: any copy of 72 or more characters of
  // an encoding, wherever it starts, contains one of them. Windows over the DER that touch the
  // modulus are left out: n is public (it is in every entry's table key) and would match there.
  const n = Buffer.from(jwk.n!, 'base64url');
  const add = (buf: Buffer, publicRange?: [number, number]) => {
    const isPublic = (from: number, to: number) => publicRange !== undefined && from < publicRange[1] && to > publicRange[0];
    for (let i = 0; i + 32 <= buf.length; i += 16) if (!isPublic(i, i + 32)) bytes.push(buf.subarray(i, i + 32));
    const encodings: [string, number][] = [[buf.toString('base64'), 0.75], [buf.toString('base64url'), 0.75], [buf.toString('hex'), 0.5], [buf.toString('hex').toUpperCase(), 0.5]];
    for (const [s, bytesPerChar] of encodings) {
      for (let i = 0; i + 48 <= s.length; i += 24) {
        if (!isPublic(Math.floor(i * bytesPerChar), Math.ceil((i + 48) * bytesPerChar))) texts.add(s.slice(i, i + 48));
      }
    }
  };
  const nAt = der.indexOf(n);
  add(der, nAt >= 0 ? [nAt, nAt + n.length] : undefined);
  for (const field of ['d', 'p', 'q', 'dp', 'dq', 'qi'] as const) add(Buffer.from(jwk[field]!, 'base64url'));
  // PEM lines are 64 characters of the same base64: each holds one of the windows above.
  return { what, texts: [...texts].filter((t) => t.length >= 32), bytes };
}

/** The first secret form found in `haystack`, or undefined. */
export function findSecret(haystack: Buffer | string, secrets: Secret[]): string | undefined {
  const text = typeof haystack === 'string' ? haystack : haystack.toString('latin1');
  const buf = typeof haystack === 'string' ? Buffer.from(haystack, 'latin1') : haystack;
  for (const s of secrets) {
    for (const t of s.texts) if (text.includes(t)) return `${s.what} (text form ${t.slice(0, 12)}…)`;
    for (const b of s.bytes) if (buf.includes(b)) return `${s.what} (raw bytes)`;
  }
  return undefined;
}

/** Every file under a node's data directory (SQLite file, WAL, journal, status). */
export function dataFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => path.join(d.parentPath ?? (d as unknown as { path: string }).path, d.name));
}

export function findSecretInFiles(dir: string, secrets: Secret[]): string | undefined {
  for (const file of dataFiles(dir)) {
    const hit = findSecret(readFileSync(file), secrets);
    if (hit) return `${file}: ${hit}`;
  }
  return undefined;
}

/**
 * The private keys a page holds, read back from its IndexedDB records and opened here with the
 * passphrase: checks the keystore format (PBKDF2-HMAC-SHA-256 → AES-256-GCM, fingerprint as AAD)
 * independently of the page's code, and names the secrets to look for.
 */
export async function keysFromPage(page: Page, passphrase: string): Promise<{ fingerprintHex: string; key: KeyObject; iterations: number }[]> {
  // A string, so this file needs no DOM typings: it runs in the page.
  const dump = (await page.evaluate(`new Promise((resolve, reject) => {
    const open = indexedDB.open('p2pdb');
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const tx = open.result.transaction(['meta', 'keys'], 'readonly');
      const meta = tx.objectStore('meta').get('keystore');
      const keys = tx.objectStore('keys').getAll();
      tx.oncomplete = () => resolve({ meta: meta.result, keys: keys.result });
      tx.onerror = () => reject(tx.error);
    };
  })`)) as { meta: unknown; keys: unknown[] };
  const meta = dump.meta as { kdf: string; iterations: number; salt: string };
  if (meta.kdf !== 'PBKDF2-HMAC-SHA256') throw new Error(`unexpected KDF ${meta.kdf}`);
  const aesKey = pbkdf2Sync(passphrase, Buffer.from(meta.salt, 'base64'), meta.iterations, 32, 'sha256');
  return (dump.keys as { id: string; iv: string; sealed: string }[]).map((r) => {
    const sealed = Buffer.from(r.sealed, 'base64');
    const decipher = createDecipheriv('aes-256-gcm', aesKey, Buffer.from(r.iv, 'base64'));
    decipher.setAAD(Buffer.from(r.id, 'utf8'));
    decipher.setAuthTag(sealed.subarray(sealed.length - 16));
    const der = Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - 16)), decipher.final()]);
    const key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
    const fp = createHash('sha256').update(createPublicKey(key).export({ type: 'spki', format: 'der' })).digest('hex');
    if (fp !== r.id) throw new Error(`keystore record ${r.id} holds another key (${fp})`);
    return { fingerprintHex: r.id, key, iterations: meta.iterations };
  });
}

/**
 * Private keys stayed in the browser: no request (URL, headers, body) holds one, nor the bytes
 * the node received (when a recording proxy saw them), the node's files or its log; and the
 * page called no origin but `origin`.
 */
export function assertNoLeaks(opts: { session: BrowserSession; origin: string; secrets: Secret[]; dataDir: string; logs: string[]; sent?: Buffer }): void {
  const problems: string[] = [];
  if (opts.session.requests.length === 0) problems.push('no requests were recorded');
  for (const r of opts.session.requests) {
    const url = new URL(r.url);
    if (url.protocol === 'data:') continue; // inline, never on the network
    if (url.origin !== opts.origin) problems.push(`a request to another origin: ${r.method} ${r.url}`);
    const hit = findSecret(wireText(r), opts.secrets);
    if (hit) problems.push(`request ${r.method} ${url.pathname} carries ${hit}`);
  }
  if (opts.sent) {
    if (opts.sent.length === 0) problems.push('the recording proxy saw no traffic');
    const hit = findSecret(opts.sent, opts.secrets);
    if (hit) problems.push(`bytes sent to the node hold ${hit}`);
  }
  if (!dataFiles(opts.dataDir).some((f) => f.endsWith('.sqlite'))) problems.push(`no SQLite file to search in ${opts.dataDir}`);
  const inFiles = findSecretInFiles(opts.dataDir, opts.secrets);
  if (inFiles) problems.push(`the node's files hold ${inFiles}`);
  const inLog = findSecret(opts.logs.join('\n'), opts.secrets);
  if (inLog) problems.push(`the node's log holds ${inLog}`);
  if (problems.length) throw new Error(problems.join('\n'));
}
