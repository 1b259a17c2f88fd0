/**
 * The client's keyring: one JSON file in $P2PDB_HOME (default ~/.p2pdb), directory 0700, file 0600.
 *
 * Public keys are stored in the clear: listing keys and addressing contacts must work without the
 * passphrase. Private keys (PKCS#8 DER) are sealed with AES-256-GCM under a key derived from the
 * passphrase by scrypt; each has a fresh IV and its name and fingerprint as additional data, so a
 * sealed key cannot be moved to another entry unnoticed. A sealed constant (the verifier) tells a
 * wrong passphrase apart from a damaged file.
 *
 * The passphrase is asked for only when a secret is touched, and at most once per Keyring.
 */
import { createCipheriv, createDecipheriv, createPrivateKey, randomBytes, scrypt as scryptCb, type KeyObject } from 'node:crypto';
import { chmod, mkdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { exportPrivatePem, generateRsaKeyPair, parsePrivateKey, parsePublicKey, type PublicKeyInfo } from '../crypto/keys.js';
import { fail } from '../errors.js';
import { toHex } from '../util/bytes.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { withFileLock } from '../util/file-lock.js';

export const KEYRING_FILE = 'keyring.json';
export const KEYRING_FORMAT = 'p2pdb-keyring/1';

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

/**
 * N=2^17, r=8, p=1: 128 MiB and about 0.4 s per unlock on one core of a small machine (OWASP's
 * recommended minimum for scrypt). A command unlocks once, so people barely notice, while every
 * guess costs an attacker the same 128 MiB, which is what keeps GPU farms slow.
 */
export const DEFAULT_SCRYPT: ScryptParams = { N: 2 ** 17, r: 8, p: 1 };

/** Bounds on parameters read from a file, so a tampered keyring cannot demand gigabytes. */
const MIN_N = 2 ** 14;
const MAX_N = 2 ** 21;
const MAX_SCRYPT_BYTES = 1024 * 1024 * 1024;
const SALT_BYTES = 32;
const KEY_BYTES = 32;
const IV_BYTES = 12;
const VERIFIER_TEXT = Buffer.from('p2pdb keyring verifier v1', 'ascii');
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** Shortest fingerprint prefix accepted as a reference, to keep typos from matching by chance. */
export const MIN_PREFIX_HEX = 4;

export interface PassphraseRequest {
  /** What the passphrase is for, to show in a prompt. */
  purpose: string;
  /** A new passphrase is being set: a prompt should ask twice. */
  confirm: boolean;
}

export type PassphraseSource = (request: PassphraseRequest) => Promise<string>;

export interface KeyringOptions {
  /** The client's home directory ($P2PDB_HOME). */
  home: string;
  passphrase: PassphraseSource;
  /** Parameters for a keyring created by this instance; an existing keyring keeps its own. */
  scrypt?: ScryptParams;
}

export interface KeyInfo {
  name: string;
  /** SHA-256 of the canonical SPKI, lower-case hex. */
  fingerprint: string;
  bits: number;
  createdAt: number;
  publicKey: KeyObject;
  publicPem: string;
  hasPrivate: boolean;
}

interface Sealed {
  iv: string;
  ciphertext: string;
  tag: string;
}

interface KdfRecord extends ScryptParams {
  name: 'scrypt';
  salt: string;
  key_bytes: number;
}

interface StoredKey {
  name: string;
  fingerprint: string;
  bits: number;
  created_at: number;
  public_key: string;
  /** PKCS#8 DER, sealed. */
  private_key?: Sealed;
}

interface KeyringDoc {
  format: typeof KEYRING_FORMAT;
  /** Absent until the first passphrase is set (a keyring may hold contacts' public keys only). */
  kdf?: KdfRecord;
  verifier?: Sealed;
  keys: StoredKey[];
}

export function defaultHome(env: NodeJS.ProcessEnv, homedir: string): string {
  return path.resolve(env.P2PDB_HOME || path.join(homedir, '.p2pdb'));
}

export function checkScryptParams(params: ScryptParams, where: string): ScryptParams {
  const { N, r, p } = params;
  const ok =
    Number.isInteger(N) && N >= MIN_N && N <= MAX_N && (N & (N - 1)) === 0 &&
    Number.isInteger(r) && r >= 1 && r <= 32 &&
    Number.isInteger(p) && p >= 1 && p <= 16 &&
    128 * N * r <= MAX_SCRYPT_BYTES;
  if (!ok) fail('malformed', `${where}: scrypt parameters N=${N} r=${r} p=${p} are outside the accepted range`);
  return { N, r, p };
}

function deriveKey(passphrase: string, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // Normalised so the same passphrase typed on another system derives the same key.
    scryptCb(passphrase.normalize('NFC'), salt, KEY_BYTES, { ...params, maxmem: 256 * params.N * params.r }, (err, key) =>
      err ? reject(err) : resolve(key),
    );
  });
}

function seal(key: Buffer, plaintext: Buffer, aad: Buffer): Sealed {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(aad);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { iv: iv.toString('base64'), ciphertext: ciphertext.toString('base64'), tag: cipher.getAuthTag().toString('base64') };
}

/** null when authentication fails (wrong key, or the sealed data or its context was changed). */
function unseal(key: Buffer, sealed: Sealed, aad: Buffer): Buffer | null {
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(sealed.iv, 'base64'));
    decipher.setAAD(aad);
    decipher.setAuthTag(Buffer.from(sealed.tag, 'base64'));
    return Buffer.concat([decipher.update(Buffer.from(sealed.ciphertext, 'base64')), decipher.final()]);
  } catch {
    return null;
  }
}

const verifierAad = () => Buffer.from(`${KEYRING_FORMAT} verifier`, 'utf8');
const privateAad = (name: string, fingerprint: string) =>
  Buffer.from(`${KEYRING_FORMAT} private-key\0${name}\0${fingerprint}`, 'utf8');

function isSealed(v: unknown): v is Sealed {
  const s = v as Sealed;
  return typeof s === 'object' && s !== null && typeof s.iv === 'string' && typeof s.ciphertext === 'string' && typeof s.tag === 'string';
}

/** Creates the home directory 0700, and tightens it if it exists but others can read it. */
export async function ensurePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const st = await stat(dir);
  if ((st.mode & 0o077) !== 0) await chmod(dir, 0o700);
}

export class Keyring {
  readonly home: string;
  readonly file: string;
  private doc: KeyringDoc;
  private onDisk: boolean;
  private infos: KeyInfo[];
  private secret?: Buffer;
  private readonly passphrase: PassphraseSource;
  private readonly scryptParams: ScryptParams;

  private constructor(opts: KeyringOptions, doc: KeyringDoc, onDisk: boolean) {
    this.home = path.resolve(opts.home);
    this.file = path.join(this.home, KEYRING_FILE);
    this.passphrase = opts.passphrase;
    this.scryptParams = checkScryptParams(opts.scrypt ?? DEFAULT_SCRYPT, 'keyring options');
    this.doc = doc;
    this.onDisk = onDisk;
    this.infos = doc.keys.map((k) => this.infoOf(k));
  }

  /** Reads the keyring; an absent one is empty and is written on the first change. */
  static async open(opts: KeyringOptions): Promise<Keyring> {
    const file = path.join(path.resolve(opts.home), KEYRING_FILE);
    const doc = await readDoc(file);
    return doc ? new Keyring(opts, doc, true) : new Keyring(opts, { format: KEYRING_FORMAT, keys: [] }, false);
  }

  get exists(): boolean {
    return this.onDisk;
  }

  /** True once a passphrase has been set. */
  get hasPassphrase(): boolean {
    return this.doc.kdf !== undefined;
  }

  get kdfParams(): ScryptParams | undefined {
    const k = this.doc.kdf;
    return k ? { N: k.N, r: k.r, p: k.p } : undefined;
  }

  list(): KeyInfo[] {
    return [...this.infos];
  }

  /** By name, full fingerprint, or a unique fingerprint prefix (at least MIN_PREFIX_HEX digits). */
  resolve(ref: string): KeyInfo {
    const byName = this.infos.find((k) => k.name === ref);
    if (byName) return byName;
    const hex = ref.toLowerCase();
    if (/^[0-9a-f]+$/.test(hex) && hex.length >= MIN_PREFIX_HEX) {
      const matches = this.infos.filter((k) => k.fingerprint.startsWith(hex));
      if (matches.length === 1) return matches[0]!;
      if (matches.length > 1) {
        fail('key_not_found', `${ref} matches ${matches.length} keys (${matches.map((k) => k.name).join(', ')}): give more of the fingerprint`);
      }
    }
    fail('key_not_found', `no key named ${JSON.stringify(ref)} or with that fingerprint in the keyring ${this.file}`);
  }

  /** Writes an empty keyring with a passphrase if there is none yet. Returns whether it did anything. */
  async init(): Promise<boolean> {
    if (this.onDisk && this.hasPassphrase) return false;
    await this.unlock();
    await this.commit((keys) => keys);
    return true;
  }

  async generate(name: string, bits = 2048): Promise<KeyInfo> {
    this.checkNewName(name);
    const pair = await generateRsaKeyPair(bits);
    return this.addPrivate(name, parsePrivateKey(pair.privateKey));
  }

  /** A PEM public key (SPKI or PKCS#1) or an unencrypted private key (PKCS#8 or PKCS#1). */
  async importPem(name: string, pem: string): Promise<KeyInfo> {
    this.checkNewName(name);
    if (/-----BEGIN (RSA |ENCRYPTED )?PRIVATE KEY-----/.test(pem)) {
      if (pem.includes('ENCRYPTED PRIVATE KEY') || pem.includes('Proc-Type: 4,ENCRYPTED')) {
        fail('bad_key', 'the private key PEM is encrypted: decrypt it first (openssl pkey -in FILE)');
      }
      return this.addPrivate(name, parsePrivateKey(pem));
    }
    const pub = parsePublicKey(pem);
    return this.add({ name, info: pub });
  }

  exportPublicPem(ref: string): string {
    return this.resolve(ref).publicPem;
  }

  async exportPrivatePem(ref: string): Promise<string> {
    return exportPrivatePem(await this.privateKey(ref));
  }

  /** The private key of a keyring entry; asks for the passphrase if not yet unlocked. */
  async privateKey(ref: string): Promise<KeyObject> {
    const info = this.resolve(ref);
    const stored = this.doc.keys.find((k) => k.fingerprint === info.fingerprint);
    if (!stored?.private_key) {
      fail('key_not_found', `the keyring holds only the public key of ${info.name}, not its private key`);
    }
    const secret = await this.unlock();
    const der = unseal(secret, stored.private_key, privateAad(stored.name, stored.fingerprint));
    if (!der) fail('malformed', `the private key of ${info.name} in ${this.file} is damaged (it fails authentication)`);
    const key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
    der.fill(0);
    return key;
  }

  async remove(ref: string): Promise<KeyInfo> {
    const info = this.resolve(ref);
    await this.commit((keys) => keys.filter((k) => k.fingerprint !== info.fingerprint));
    return info;
  }

  /** Derives the key from the passphrase (setting one if the keyring has none yet) and checks it. */
  async unlock(): Promise<Buffer> {
    if (this.secret) return this.secret;
    const kdf = this.doc.kdf;
    if (!kdf || !this.doc.verifier) {
      const passphrase = await this.passphrase({ purpose: `new passphrase for the keyring ${this.file}`, confirm: true });
      if (passphrase === '') fail('bad_request', 'the keyring passphrase must not be empty');
      const salt = randomBytes(SALT_BYTES);
      const secret = await deriveKey(passphrase, salt, this.scryptParams);
      this.doc = {
        ...this.doc,
        kdf: { name: 'scrypt', ...this.scryptParams, salt: salt.toString('base64'), key_bytes: KEY_BYTES },
        verifier: seal(secret, VERIFIER_TEXT, verifierAad()),
      };
      this.secret = secret;
      return secret;
    }
    const passphrase = await this.passphrase({ purpose: `passphrase for the keyring ${this.file}`, confirm: false });
    const secret = await deriveKey(passphrase, Buffer.from(kdf.salt, 'base64'), kdf);
    const check = unseal(secret, this.doc.verifier, verifierAad());
    if (!check || !check.equals(VERIFIER_TEXT)) fail('keyring_bad_passphrase', `wrong passphrase for the keyring ${this.file}`);
    this.secret = secret;
    return secret;
  }

  private async addPrivate(name: string, parsed: { key: KeyObject; publicKey: PublicKeyInfo }): Promise<KeyInfo> {
    this.checkNewKey(parsed.publicKey);
    const secret = await this.unlock();
    const fingerprint = toHex(parsed.publicKey.fingerprint);
    const der = parsed.key.export({ type: 'pkcs8', format: 'der' });
    const sealed = seal(secret, der, privateAad(name, fingerprint));
    der.fill(0);
    return this.add({ name, info: parsed.publicKey, sealed });
  }

  private async add(k: { name: string; info: PublicKeyInfo; sealed?: Sealed }): Promise<KeyInfo> {
    this.checkNewKey(k.info);
    const stored: StoredKey = {
      name: k.name,
      fingerprint: toHex(k.info.fingerprint),
      bits: k.info.bits,
      created_at: Date.now(),
      public_key: k.info.key.export({ type: 'spki', format: 'pem' }).toString(),
      ...(k.sealed ? { private_key: k.sealed } : {}),
    };
    await this.commit((keys) => {
      // Checked again on what is on disk now: another process may have added it meanwhile.
      const clash = keys.find((o) => o.name === stored.name || o.fingerprint === stored.fingerprint);
      if (clash) fail('key_exists', `the keyring already has ${clash.name === stored.name ? `a key named ${clash.name}: choose another name` : `that key, as ${clash.name}`}`);
      return [...keys, stored];
    });
    return this.infos.find((i) => i.fingerprint === stored.fingerprint)!;
  }

  private checkNewName(name: string): void {
    if (!NAME_RE.test(name)) {
      fail('bad_request', `key name ${JSON.stringify(name)} must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit`);
    }
    // Its own code: a script can tell "exists already" from a bad name.
    if (this.infos.some((k) => k.name === name)) fail('key_exists', `the keyring already has a key named ${name}: choose another name (or 'p2pdb keys remove ${name}' first)`);
  }

  private checkNewKey(info: PublicKeyInfo): void {
    const fp = toHex(info.fingerprint);
    const same = this.infos.find((k) => k.fingerprint === fp);
    if (same) fail('key_exists', `that key is already in the keyring as ${same.name} (${fp})`);
  }

  /**
   * Applies `change` to the keys on disk now, not to those read at open: another process (a
   * second `p2pdb keys new`) may have written since, and a plain rewrite would drop its key. The
   * lock makes read-change-write one step across processes; it is held for milliseconds only
   * (the passphrase prompt, scrypt and key generation happen before).
   */
  private async commit(change: (keys: StoredKey[]) => StoredKey[]): Promise<void> {
    await ensurePrivateDir(this.home);
    await withFileLock(`${this.file}.lock`, async () => {
      let base = (await readDoc(this.file)) ?? { format: KEYRING_FORMAT, keys: [] };
      if (this.doc.kdf) {
        if (!base.kdf) {
          base = { ...base, kdf: this.doc.kdf, ...(this.doc.verifier ? { verifier: this.doc.verifier } : {}) };
        } else if (base.kdf.salt !== this.doc.kdf.salt) {
          // What we sealed uses our key; the file's keys use another passphrase's.
          fail('busy', `another process set or changed the passphrase of ${this.file} meanwhile; run the command again`);
        }
      }
      const doc: KeyringDoc = { ...base, keys: change(base.keys) };
      const infos = doc.keys.map((k) => this.infoOf(k));
      await writeFileAtomic(this.file, JSON.stringify(doc, null, 2) + '\n');
      this.doc = doc;
      this.infos = infos;
      this.onDisk = true;
    });
  }

  private infoOf(k: StoredKey): KeyInfo {
    let pub: PublicKeyInfo;
    try {
      pub = parsePublicKey(k.public_key);
    } catch (e) {
      fail('malformed', `${this.file}: the public key of ${k.name} cannot be read (${(e as Error).message})`);
    }
    const fingerprint = toHex(pub.fingerprint);
    if (fingerprint !== k.fingerprint) fail('malformed', `${this.file}: the fingerprint of ${k.name} does not match its public key`);
    return {
      name: k.name,
      fingerprint,
      bits: pub.bits,
      createdAt: k.created_at,
      publicKey: pub.key,
      publicPem: k.public_key,
      hasPrivate: k.private_key !== undefined,
    };
  }
}

/** The keyring document at `file`, or undefined when there is none yet. */
async function readDoc(file: string): Promise<KeyringDoc | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  return parseDoc(text, file);
}

function parseDoc(text: string, file: string): KeyringDoc {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    fail('malformed', `the keyring ${file} is not JSON`);
  }
  const doc = raw as Partial<KeyringDoc>;
  if (typeof doc !== 'object' || doc === null || doc.format !== KEYRING_FORMAT || !Array.isArray(doc.keys)) {
    fail('malformed', `${file} is not a ${KEYRING_FORMAT} keyring`);
  }
  if (doc.kdf !== undefined) {
    const kdf = doc.kdf;
    if (kdf.name !== 'scrypt' || typeof kdf.salt !== 'string' || kdf.key_bytes !== KEY_BYTES || !isSealed(doc.verifier)) {
      fail('malformed', `${file}: unsupported or damaged key derivation record`);
    }
    checkScryptParams(kdf, file);
  }
  for (const k of doc.keys) {
    const ok =
      typeof k === 'object' && k !== null && typeof k.name === 'string' && typeof k.fingerprint === 'string' &&
      typeof k.public_key === 'string' && typeof k.created_at === 'number' &&
      (k.private_key === undefined || isSealed(k.private_key));
    if (!ok) fail('malformed', `${file}: a key record is damaged`);
    if (k.private_key && !doc.kdf) fail('malformed', `${file}: a private key is stored without a key derivation record`);
  }
  return doc as KeyringDoc;
}
