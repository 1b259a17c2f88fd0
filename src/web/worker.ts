/**
 * The app's Web Worker, so the page never blocks on heavy work:
 * - `mint`: the proof of work (WebAssembly kernel, plain JS where WebAssembly is off), with progress;
 *   the page runs one worker per proof and cancels by terminating it.
 * - `kdf`: the keystore's PBKDF2 (600,000 iterations: about 3 s in node-forge, 0.1 s in WebCrypto).
 * - `keygen`: a new RSA key pair (node-forge: seconds of prime search).
 * - `keys` / `entries`: the inbox. Checks each entry's id and table signature and decrypts it with
 *   the recipient's key, one at a time, reporting as it goes (node-forge opens about 27 a second).
 */
import { selectBackend, type BackendKind, type BrowserPrivateKey, type CryptoBackend } from '../client/browser-crypto.js';
import { checkStoredEntry, type StoredWireEntry } from '../client/browser-entry.js';
import { answerMintRequest, type MintRequest } from '../client/browser-mint.js';
import { isP2pdbError } from '../errors.js';

export type InboxRequest =
  | { type: 'keys'; backend: BackendKind; keys: { fingerprintHex: string; pkcs8: Uint8Array }[] }
  | { type: 'entries'; entries: StoredWireEntry[] };

/** The keystore's key derivation, off the page's thread. */
export type KdfRequest = { type: 'kdf'; backend: BackendKind; passphrase: string; salt: Uint8Array; iterations: number };
export type KdfReply = { type: 'derived'; key: Uint8Array } | { type: 'error'; code: string; message: string };

/** A new key pair (PKCS#8), off the page's thread: node-forge searches primes for seconds. */
export type KeygenRequest = { type: 'keygen'; backend: BackendKind; bits: number };
export type KeygenReply = { type: 'generated'; pkcs8: Uint8Array } | { type: 'error'; code: string; message: string };

export type InboxReply =
  | { type: 'opened'; idHex: string; seq: string; createdAt: number; tableFingerprintHex: string; toHex: string; text?: string; error?: string }
  | { type: 'queue'; pending: number; done: number };

const scope = self as unknown as { postMessage(m: unknown): void; onmessage: ((ev: { data: unknown }) => void) | null };

let backend: CryptoBackend | undefined;
let keys = new Map<string, Promise<BrowserPrivateKey>>();
const queue: StoredWireEntry[] = [];
let done = 0;
let running = false;

async function drain(): Promise<void> {
  if (running) return;
  running = true;
  try {
    while (queue.length > 0) {
      const json = queue.shift()!;
      scope.postMessage({ type: 'queue', pending: queue.length + 1, done } satisfies InboxReply);
      scope.postMessage(await openOne(json));
      done++;
    }
    scope.postMessage({ type: 'queue', pending: 0, done } satisfies InboxReply);
  } finally {
    running = false;
  }
}

async function openOne(json: StoredWireEntry): Promise<InboxReply> {
  const base = { type: 'opened' as const, idHex: String(json.id), seq: String(json.seq), createdAt: Number(json.created_at), tableFingerprintHex: '', toHex: String(json.to) };
  try {
    if (!backend) throw new Error('no keys loaded');
    const checked = await checkStoredEntry(backend, json);
    const key = keys.get(checked.toHex);
    if (!key) return { ...base, tableFingerprintHex: checked.tableFingerprintHex, error: 'not addressed to a key held here' };
    const plaintext = await (await key).open(checked.payload);
    return { ...base, tableFingerprintHex: checked.tableFingerprintHex, text: new TextDecoder('utf-8', { fatal: false }).decode(plaintext) };
  } catch (e) {
    return { ...base, error: isP2pdbError(e) ? `${e.code}: ${e.message}` : (e as Error).message };
  }
}

function derive(req: KdfRequest): void {
  selectBackend(req.backend)
    .pbkdf2(req.passphrase, req.salt, req.iterations)
    .then((key) => scope.postMessage({ type: 'derived', key } satisfies KdfReply))
    .catch((e: unknown) => scope.postMessage({ type: 'error', code: isP2pdbError(e) ? e.code : 'internal', message: (e as Error).message } satisfies KdfReply));
}

function generate(req: KeygenRequest): void {
  selectBackend(req.backend)
    .generatePkcs8(req.bits)
    .then((pkcs8) => scope.postMessage({ type: 'generated', pkcs8 } satisfies KeygenReply))
    .catch((e: unknown) => scope.postMessage({ type: 'error', code: isP2pdbError(e) ? e.code : 'internal', message: (e as Error).message } satisfies KeygenReply));
}

scope.onmessage = (ev) => {
  const msg = ev.data as MintRequest | InboxRequest | KdfRequest | KeygenRequest;
  if (msg.type === 'mint') answerMintRequest(scope, msg);
  else if (msg.type === 'kdf') derive(msg);
  else if (msg.type === 'keygen') generate(msg);
  else if (msg.type === 'keys') {
    backend = selectBackend(msg.backend);
    keys = new Map(
      msg.keys.map((k) => {
        const key = backend!.privateKey(k.pkcs8);
        key.catch(() => undefined); // reported per entry when used, not as an unhandled rejection
        return [k.fingerprintHex, key];
      }),
    );
  } else if (msg.type === 'entries') {
    queue.push(...msg.entries);
    void drain();
  }
};
