/**
 * The browser app the node serves at `/`: keys kept in this browser (IndexedDB, sealed with a
 * passphrase), writing to tables whose key the user holds (proof minted in a Web Worker), and a
 * live inbox of what is addressed to the user's keys (decrypted in a worker). Pairing links
 * (#pair=…) import keys and leave the address bar and history at once.
 * Private keys never leave the browser: the node only ever sees finished, encrypted entries.
 */
import { decodePairingFragment, isPairingFragment, type DecodedPairing } from '../client/pairing.js';
import { pkcs8FromJwk, pkcs8FromPem, selectBackend, spkiFromPem, spkiOfPkcs8, type BrowserPrivateKey, type BrowserPublicKey } from '../client/browser-crypto.js';
import { buildEntry, type StoredWireEntry } from '../client/browser-entry.js';
import { mintInWorker, type MintJob, type WorkerLike } from '../client/browser-mint.js';
import { BrowserNode, type NodeHello } from '../client/browser-node.js';
import { toHex } from '../client/base64url.js';
import { P2pdbError, isP2pdbError, type ErrorCode } from '../errors.js';
import { Keystore, type UnlockedKey } from './keystore.js';
import type { InboxReply, InboxRequest, KdfReply, KdfRequest, KeygenReply, KeygenRequest } from './worker.js';

const WORKER_URL = '/app/worker.js';

const $ = <T extends HTMLElement>(id: string) => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing #${id}`);
  return el as T;
};

function show(id: string, visible: boolean): void {
  $(id).hidden = !visible;
}

function message(e: unknown): string {
  return isP2pdbError(e) ? e.message : e instanceof Error ? e.message : String(e);
}

function reportError(e: unknown): void {
  const el = $('app-error');
  el.textContent = message(e);
  el.hidden = false;
}

const short = (fp: string) => `${fp.slice(0, 8)}…${fp.slice(-4)}`;

// --- state ---

const backend = selectBackend();
const node = new BrowserNode('');
let hello: NodeHello | undefined;
let keystore: Keystore;
let keys: (UnlockedKey & { key: BrowserPrivateKey })[] = [];
let pendingPairing: DecodedPairing | undefined;
let mintJob: MintJob | undefined;
let inboxWorker: Worker | undefined;
let closeStream: (() => void) | undefined;
const seen = new Set<string>();
/** Entries already opened this unlock: a key added later does not make the worker open them again. */
const opened = new Map<string, Extract<InboxReply, { type: 'opened' }>>();

// --- pairing: read the fragment and remove it before anything else happens ---

function takePairingFragment(): void {
  if (!isPairingFragment(location.hash)) return;
  const fragment = location.hash;
  // Out of the address bar and out of history (replaceState rewrites the current entry).
  history.replaceState(null, '', location.pathname + location.search);
  try {
    pendingPairing = decodePairingFragment(fragment);
    const n = pendingPairing.recipient ? 2 : 1;
    $('pair-info').textContent = `A pairing link${pendingPairing.label ? ` (“${pendingPairing.label}”)` : ''} holds ${n} key${n > 1 ? 's' : ''}. Enter your passphrase to store ${n > 1 ? 'them' : 'it'} in this browser.`;
  } catch (e) {
    $('pair-info').textContent = `This pairing link cannot be read: ${message(e)}`;
  }
  show('pair-panel', true);
}

async function importPairing(): Promise<void> {
  const p = pendingPairing;
  if (!p) return;
  pendingPairing = undefined;
  const label = p.label ?? 'paired';
  const entries: [Record<string, unknown>, string][] = [[p.table as unknown as Record<string, unknown>, p.recipient ? `${label} (table)` : label]];
  if (p.recipient) entries.push([p.recipient as unknown as Record<string, unknown>, `${label} (reader)`]);
  for (const [jwk, name] of entries) await addKey(pkcs8FromJwk(jwk), name);
  $('pair-info').textContent = `Paired: ${entries.length} key${entries.length > 1 ? 's' : ''} stored in this browser.`;
}

// --- keys ---

async function addKey(pkcs8: Uint8Array, label: string): Promise<void> {
  const { spki } = spkiOfPkcs8(pkcs8);
  const fingerprintHex = toHex(await backend.sha256(spki));
  await keystore.add(fingerprintHex, spki, pkcs8, label);
}

async function loadKeys(): Promise<void> {
  const unlocked = await keystore.unlockAll();
  keys = await Promise.all(unlocked.map(async (k) => ({ ...k, key: await backend.privateKey(k.pkcs8) })));
  renderKeys();
  restartInbox();
}

function renderKeys(): void {
  const list = $('key-list');
  list.replaceChildren(
    ...keys.map((k) => {
      const li = document.createElement('li');
      li.dataset.fp = k.fingerprintHex;
      const name = document.createElement('strong');
      name.textContent = k.label;
      const fp = document.createElement('div');
      fp.className = 'fp';
      fp.textContent = k.fingerprintHex;
      li.append(name, fp);
      return li;
    }),
  );
  const options = () => keys.map((k) => new Option(`${k.label} (${short(k.fingerprintHex)})`, k.fingerprintHex));
  $<HTMLSelectElement>('write-table').replaceChildren(...options());
  $<HTMLSelectElement>('write-to').replaceChildren(...options(), new Option('someone else (paste a public key)', 'pem'));
  show('write', keys.length > 0);
  show('inbox', keys.length > 0);
  $('keys-status').textContent = keys.length ? '' : 'No keys yet: create one or open a pairing link.';
}

async function onUnlock(ev: Event): Promise<void> {
  ev.preventDefault();
  const input = $<HTMLInputElement>('passphrase');
  const status = $('unlock-status');
  status.textContent = backend.kind === 'forge' ? 'deriving the key (slow without WebCrypto)…' : 'deriving the key…';
  $<HTMLButtonElement>('unlock-btn').disabled = true;
  try {
    await keystore.unlock(input.value);
    input.value = '';
    await importPairing().catch((e: unknown) => ($('pair-info').textContent = `The paired keys could not be stored: ${message(e)}`));
    await loadKeys();
    status.textContent = 'unlocked';
    show('unlock-form', false);
    show('keys-panel', true);
  } catch (e) {
    status.textContent = message(e);
  } finally {
    $<HTMLButtonElement>('unlock-btn').disabled = false;
  }
}

function onLock(): void {
  keystore.lock();
  keys = [];
  closeStream?.();
  closeStream = undefined;
  inboxWorker?.terminate();
  inboxWorker = undefined;
  seen.clear();
  opened.clear();
  $('messages').replaceChildren();
  renderKeys();
  show('keys-panel', false);
  show('unlock-form', true);
  $('unlock-status').textContent = 'locked';
}

async function onNewKey(ev: Event): Promise<void> {
  ev.preventDefault();
  const status = $('keys-status');
  status.textContent = backend.kind === 'forge' ? 'making a key without WebCrypto (can take a while)…' : 'making a key…';
  try {
    await addKey(await generateInWorker(2048), $<HTMLInputElement>('newkey-label').value.trim());
    $<HTMLInputElement>('newkey-label').value = '';
    await loadKeys();
    status.textContent = 'key created';
  } catch (e) {
    status.textContent = message(e);
  }
}

async function onImport(ev: Event): Promise<void> {
  ev.preventDefault();
  const status = $('keys-status');
  try {
    const pem = $<HTMLTextAreaElement>('import-pem');
    await addKey(pkcs8FromPem(pem.value), $<HTMLInputElement>('import-label').value.trim() || 'imported');
    pem.value = '';
    await loadKeys();
    status.textContent = 'key imported';
  } catch (e) {
    status.textContent = message(e);
  }
}

// --- writing ---

function makeWorker(): Worker & WorkerLike {
  return new Worker(WORKER_URL, { name: 'p2pdb' }) as Worker & WorkerLike;
}

/** One request to a fresh worker and its one answer (errors come back as typed errors). */
function askWorker<T>(request: KdfRequest | KeygenRequest, answer: (reply: KdfReply | KeygenReply) => T | undefined, what: string): Promise<T> {
  const worker = makeWorker();
  return new Promise<T>((resolve, reject) => {
    worker.onmessage = (ev: { data: unknown }) => {
      const msg = ev.data as KdfReply | KeygenReply;
      if (msg.type === 'error') return reject(new P2pdbError(msg.code as ErrorCode, msg.message));
      const value = answer(msg);
      if (value === undefined) reject(new P2pdbError('internal', `the ${what} worker answered ${msg.type}`));
      else resolve(value);
    };
    worker.onerror = () => reject(new P2pdbError('internal', `the ${what} worker failed`));
    worker.postMessage(request);
  }).finally(() => worker.terminate());
}

/** The keystore's PBKDF2 in a worker, so the page stays responsive while node-forge grinds. */
function deriveInWorker(passphrase: string, salt: Uint8Array, iterations: number): Promise<Uint8Array> {
  return askWorker({ type: 'kdf', backend: backend.kind, passphrase, salt, iterations }, (m) => (m.type === 'derived' ? m.key : undefined), 'key derivation');
}

/** A new key pair in a worker: node-forge's prime search takes seconds. */
function generateInWorker(bits: number): Promise<Uint8Array> {
  return askWorker({ type: 'keygen', backend: backend.kind, bits }, (m) => (m.type === 'generated' ? m.pkcs8 : undefined), 'key generation');
}

async function recipientKey(): Promise<BrowserPublicKey> {
  const to = $<HTMLSelectElement>('write-to').value;
  if (to === 'pem') return backend.publicKey(spkiFromPem($<HTMLTextAreaElement>('write-to-pem').value));
  const own = keys.find((k) => k.fingerprintHex === to);
  if (!own) throw new Error('choose a recipient');
  return own.key.publicKey;
}

async function onSend(ev: Event): Promise<void> {
  ev.preventDefault();
  const status = $('write-status');
  const table = keys.find((k) => k.fingerprintHex === $<HTMLSelectElement>('write-table').value);
  const text = $<HTMLTextAreaElement>('write-text').value;
  if (!table || text === '') return;
  const send = $<HTMLButtonElement>('send-btn');
  send.disabled = true;
  const progress = $<HTMLProgressElement>('mint-progress');
  progress.value = 0;
  try {
    hello ??= await node.hello();
    const powBits = hello.pow_bits;
    const entry = await buildEntry({
      backend,
      table: table.key,
      recipient: await recipientKey(),
      plaintext: new TextEncoder().encode(text),
      powBits,
      mint: async (id, bits) => {
        status.textContent = `minting the proof of work (${bits} bits)…`;
        show('mint-panel', true);
        mintJob = mintInWorker(makeWorker, id, bits, {
          kernel: typeof WebAssembly === 'object' ? 'auto' : 'js',
          onProgress: (p) => {
            progress.value = p.fraction;
            $('kernel').textContent = p.kernel === 'wasm' ? 'WebAssembly' : 'JavaScript';
          },
        });
        try {
          const minted = await mintJob.promise;
          $('kernel').textContent = minted.kernel === 'wasm' ? 'WebAssembly' : 'JavaScript';
          return minted.proof;
        } finally {
          mintJob = undefined;
          show('mint-panel', false);
        }
      },
    });
    status.textContent = 'sending…';
    const res = await node.put(entry);
    status.textContent = `${res.status}: ${res.id}`;
    status.dataset.id = res.id;
    $<HTMLTextAreaElement>('write-text').value = '';
  } catch (e) {
    status.textContent = isP2pdbError(e) && e.code === 'mint_cancelled' ? 'cancelled' : `not sent: ${message(e)}`;
  } finally {
    send.disabled = false;
  }
}

// --- the inbox ---

function restartInbox(): void {
  closeStream?.();
  inboxWorker?.terminate();
  seen.clear();
  $('messages').replaceChildren();
  if (keys.length === 0) return;
  const worker = makeWorker();
  inboxWorker = worker;
  worker.onmessage = (ev: { data: unknown }) => onInboxReply(ev.data as InboxReply);
  const keyMsg: InboxRequest = { type: 'keys', backend: backend.kind, keys: keys.map((k) => ({ fingerprintHex: k.fingerprintHex, pkcs8: k.pkcs8 })) };
  worker.postMessage(keyMsg);
  const status = $('inbox-status');
  status.textContent = 'connecting…';
  closeStream = node.subscribe(
    { recipients: keys.map((k) => k.fingerprintHex), after: '0' },
    (entry: StoredWireEntry) => {
      if (seen.has(entry.id)) return;
      seen.add(entry.id);
      placeholder(entry);
      const known = opened.get(entry.id);
      if (known) showOpened(known);
      else worker.postMessage({ type: 'entries', entries: [entry] } satisfies InboxRequest);
    },
    (state) => {
      status.textContent = state === 'open' ? 'live' : 'reconnecting…';
      status.dataset.state = state;
    },
  );
}

function placeholder(entry: StoredWireEntry): void {
  const li = document.createElement('li');
  li.dataset.id = entry.id;
  li.dataset.state = 'pending';
  const meta = document.createElement('div');
  meta.className = 'small';
  meta.textContent = `${new Date(entry.created_at).toLocaleString()} · to ${short(entry.to)}`;
  const text = document.createElement('div');
  text.className = 'text';
  text.textContent = 'decrypting…';
  li.append(meta, text);
  $('messages').prepend(li);
}

function onInboxReply(msg: InboxReply): void {
  if (msg.type === 'queue') {
    const bar = $<HTMLProgressElement>('inbox-progress');
    bar.hidden = msg.pending === 0;
    bar.max = msg.done + msg.pending;
    bar.value = msg.done;
    if (msg.pending > 0) $('inbox-status').textContent = `decrypting ${msg.pending} more…`;
    else $('inbox-status').textContent = closeStream ? 'live' : '';
    return;
  }
  if (!msg.error) opened.set(msg.idHex, msg);
  showOpened(msg);
}

function showOpened(msg: Extract<InboxReply, { type: 'opened' }>): void {
  const li = document.querySelector<HTMLLIElement>(`#messages li[data-id="${CSS.escape(msg.idHex)}"]`);
  if (!li) return;
  li.dataset.state = msg.error ? 'error' : 'ok';
  li.dataset.table = msg.tableFingerprintHex;
  const text = li.querySelector('.text')!;
  text.textContent = msg.error ? `cannot open: ${msg.error}` : msg.text!;
  const meta = li.querySelector('.small')!;
  if (msg.tableFingerprintHex) meta.textContent += ` · table ${short(msg.tableFingerprintHex)}`;
}

// --- start ---

/** A pairing link opened in a tab that already shows the app only changes the fragment: no reload. */
function onHashChange(): void {
  takePairingFragment();
  if (pendingPairing && keystore?.unlocked) {
    importPairing()
      .then(loadKeys)
      .catch((e: unknown) => ($('pair-info').textContent = `The paired keys could not be stored: ${message(e)}`));
  }
}

async function start(): Promise<void> {
  takePairingFragment();
  window.addEventListener('hashchange', onHashChange);
  $('backend').textContent = backend.kind === 'webcrypto' ? 'WebCrypto' : 'node-forge (no WebCrypto here)';
  $('kernel').textContent = typeof WebAssembly === 'object' ? 'WebAssembly' : 'JavaScript (WebAssembly is off)';
  document.body.dataset.backend = backend.kind;
  $('unlock-form').addEventListener('submit', (ev) => void onUnlock(ev));
  $('lock-btn').addEventListener('click', onLock);
  $('newkey-form').addEventListener('submit', (ev) => void onNewKey(ev));
  $('import-form').addEventListener('submit', (ev) => void onImport(ev));
  $('write-form').addEventListener('submit', (ev) => void onSend(ev));
  $('cancel-btn').addEventListener('click', () => mintJob?.cancel());
  $('write-to').addEventListener('change', () => show('write-to-pem', $<HTMLSelectElement>('write-to').value === 'pem'));
  keystore = await Keystore.open(backend, deriveInWorker);
  const exists = await keystore.exists();
  $('unlock-btn').textContent = exists ? 'Unlock' : 'Create keystore';
  $('unlock-status').textContent = exists ? '' : 'No keys in this browser yet: choose a passphrase (8+ characters).';
  document.body.dataset.ready = '1';
  try {
    hello = await node.hello();
    $('node-info').textContent = `${hello.onion ?? location.host} · ${hello.software} · proof of work ${hello.pow_bits} bits`;
  } catch (e) {
    $('node-info').textContent = `the node did not answer: ${message(e)}`;
  }
}

start().catch(reportError);
