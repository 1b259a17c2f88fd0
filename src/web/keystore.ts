/**
 * The browser's keystore: private keys in IndexedDB, each PKCS#8 DER sealed with AES-256-GCM under
 * a key derived from the user's passphrase. The KDF is PBKDF2-HMAC-SHA-256 (the one KDF both
 * WebCrypto and node-forge have), 600,000 iterations (OWASP's 2023 figure for this hash), a
 * 16-byte random salt per store; the iteration count is stored so it can be raised later.
 * A check value (a known text sealed with the same key) tells a wrong passphrase apart.
 * Nothing here ever leaves the browser.
 */
import { fail } from '../errors.js';
import { fromBase64, toBase64 } from '../client/base64url.js';
import type { CryptoBackend } from '../client/browser-crypto.js';

export const KDF_ITERATIONS = 600_000;
const CHECK_TEXT = 'p2pdb keystore v1';
const DB_NAME = 'p2pdb';

interface MetaRecord {
  id: 'keystore';
  kdf: 'PBKDF2-HMAC-SHA256';
  iterations: number;
  salt: string;
  checkIv: string;
  check: string;
}

export interface KeyRecord {
  /** Fingerprint, hex. */
  id: string;
  label: string;
  spki: string;
  iv: string;
  sealed: string;
  addedAt: number;
}

export interface UnlockedKey {
  fingerprintHex: string;
  label: string;
  pkcs8: Uint8Array;
}

function request<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error ?? new Error('IndexedDB request failed'));
  });
}

function openDb(): Promise<IDBDatabase> {
  const open = indexedDB.open(DB_NAME, 1);
  open.onupgradeneeded = () => {
    const db = open.result;
    db.createObjectStore('meta', { keyPath: 'id' });
    db.createObjectStore('keys', { keyPath: 'id' });
  };
  return request(open);
}

function randomBytes(n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n));
}

const utf8 = (s: string) => new TextEncoder().encode(s);

/** PBKDF2-HMAC-SHA-256 to 32 bytes; the app runs it in a worker (node-forge needs seconds for it). */
export type Kdf = (passphrase: string, salt: Uint8Array, iterations: number) => Promise<Uint8Array>;

export class Keystore {
  private key: Uint8Array | undefined;

  private constructor(
    private readonly db: IDBDatabase,
    private readonly backend: CryptoBackend,
    private readonly kdf: Kdf,
  ) {}

  static async open(backend: CryptoBackend, kdf: Kdf = (p, s, i) => backend.pbkdf2(p, s, i)): Promise<Keystore> {
    return new Keystore(await openDb(), backend, kdf);
  }

  get unlocked(): boolean {
    return this.key !== undefined;
  }

  private store(name: 'meta' | 'keys', mode: IDBTransactionMode): IDBObjectStore {
    return this.db.transaction(name, mode).objectStore(name);
  }

  async exists(): Promise<boolean> {
    return (await request(this.store('meta', 'readonly').get('keystore'))) !== undefined;
  }

  /** Creates the store with this passphrase (when there is none) or unlocks it. */
  async unlock(passphrase: string): Promise<void> {
    if (passphrase.length < 8) fail('keyring_bad_passphrase', 'a passphrase has at least 8 characters');
    const meta = (await request(this.store('meta', 'readonly').get('keystore'))) as MetaRecord | undefined;
    if (!meta) {
      const salt = randomBytes(16);
      const key = await this.kdf(passphrase, salt, KDF_ITERATIONS);
      const checkIv = randomBytes(12);
      const check = await this.backend.aesGcmEncrypt(key, checkIv, utf8(CHECK_TEXT));
      const record: MetaRecord = { id: 'keystore', kdf: 'PBKDF2-HMAC-SHA256', iterations: KDF_ITERATIONS, salt: toBase64(salt), checkIv: toBase64(checkIv), check: toBase64(check) };
      await request(this.store('meta', 'readwrite').put(record));
      this.key = key;
      return;
    }
    const key = await this.kdf(passphrase, fromBase64(meta.salt), meta.iterations);
    try {
      await this.backend.aesGcmDecrypt(key, fromBase64(meta.checkIv), fromBase64(meta.check));
    } catch {
      fail('keyring_bad_passphrase', 'wrong passphrase');
    }
    this.key = key;
  }

  lock(): void {
    this.key?.fill(0);
    this.key = undefined;
  }

  private requireKey(): Uint8Array {
    if (!this.key) fail('keystore_locked', 'the keystore is locked: enter the passphrase');
    return this.key;
  }

  async list(): Promise<KeyRecord[]> {
    const all = (await request(this.store('keys', 'readonly').getAll())) as KeyRecord[];
    return all.sort((a, b) => a.addedAt - b.addedAt);
  }

  /** Seals and stores a key; the fingerprint is the AAD, so records cannot be swapped. */
  async add(fingerprintHex: string, spki: Uint8Array, pkcs8: Uint8Array, label: string): Promise<void> {
    const key = this.requireKey();
    const iv = randomBytes(12);
    const sealed = await this.backend.aesGcmEncrypt(key, iv, pkcs8, utf8(fingerprintHex));
    const existing = (await request(this.store('keys', 'readonly').get(fingerprintHex))) as KeyRecord | undefined;
    const record: KeyRecord = { id: fingerprintHex, label: label || existing?.label || fingerprintHex.slice(0, 8), spki: toBase64(spki), iv: toBase64(iv), sealed: toBase64(sealed), addedAt: existing?.addedAt ?? Date.now() };
    await request(this.store('keys', 'readwrite').put(record));
  }

  async remove(fingerprintHex: string): Promise<void> {
    await request(this.store('keys', 'readwrite').delete(fingerprintHex));
  }

  async unlockAll(): Promise<UnlockedKey[]> {
    const key = this.requireKey();
    const out: UnlockedKey[] = [];
    for (const r of await this.list()) {
      const pkcs8 = await this.backend.aesGcmDecrypt(key, fromBase64(r.iv), fromBase64(r.sealed), utf8(r.id));
      out.push({ fingerprintHex: r.id, label: r.label, pkcs8 });
    }
    return out;
  }
}
