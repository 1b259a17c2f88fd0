/**
 * The node's identity on disk: the 32-byte Ed25519 seed in DATA/identity/onion_ed25519_seed
 * (dir 0700, file 0600). Created once, then loaded: its onion address is the node's id, so
 * losing or replacing the file changes who the node is.
 */
import { constants } from 'node:fs';
import { chmod, link, lstat, mkdir, open, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fail } from '../errors.js';
import { identityFromSeed, newIdentity, type OnionIdentity } from './onion-key.js';

export const SEED_FILE = path.join('identity', 'onion_ed25519_seed');
const SEED_BYTES = 32;

export interface LoadedIdentity {
  identity: OnionIdentity;
  file: string;
  /** True when this call generated the key. */
  created: boolean;
}

export function identityFile(dataDir: string): string {
  return path.join(dataDir, SEED_FILE);
}

/** Loads DATA/identity/onion_ed25519_seed, creating it on first start. */
export async function loadOrCreateIdentity(dataDir: string): Promise<LoadedIdentity> {
  const file = identityFile(dataDir);
  await privateDir(path.dirname(file));
  const seed = await readSeed(file);
  if (seed) return { identity: identityFromSeed(seed), file, created: false };
  const fresh = newIdentity();
  if (await createSeedFile(file, fresh.seed)) return { identity: fresh, file, created: true };
  // Another process created it between our read and our write: theirs wins.
  const theirs = (await readSeed(file)) ?? fail('identity_invalid', `${file} vanished while it was created`);
  return { identity: identityFromSeed(theirs), file, created: false };
}

/** The seed, or undefined when the file does not exist; refuses anything but a private 32-byte file. */
async function readSeed(file: string): Promise<Buffer | undefined> {
  let fh;
  try {
    // O_NOFOLLOW: a symlink planted in our dir must not redirect where the key is read from.
    fh = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') fail('identity_invalid', `${file} is a symlink; the identity file must be a regular file`);
    fail('identity_invalid', `cannot read ${file}: ${(e as Error).message}`);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) fail('identity_invalid', `${file} is not a regular file`);
    if ((st.mode & 0o077) !== 0) {
      fail('identity_permissions', `${file} has mode ${(st.mode & 0o777).toString(8)}; it holds the node's secret key and must be 0600 (chmod 600 it)`);
    }
    if (st.size !== SEED_BYTES) fail('identity_invalid', `${file} is ${st.size} bytes; an identity seed is exactly ${SEED_BYTES}`);
    const seed = Buffer.alloc(SEED_BYTES);
    const { bytesRead } = await fh.read(seed, 0, SEED_BYTES, 0);
    if (bytesRead !== SEED_BYTES) fail('identity_invalid', `${file} changed while it was read`);
    return seed;
  } finally {
    await fh.close();
  }
}

/**
 * Temp file (0600, fsynced), then link() into place: unlike rename, link never replaces an
 * existing file, so two processes starting at once cannot end up with different identities.
 * Returns false when the file already existed.
 */
async function createSeedFile(file: string, seed: Buffer): Promise<boolean> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.chmod(0o600);
    await fh.writeFile(seed);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await link(tmp, file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  } finally {
    await unlink(tmp).catch(() => {});
  }
  const dh = await open(dir, 'r');
  try {
    await dh.sync(); // makes the new directory entry durable
  } catch {
    /* some file systems cannot fsync a directory */
  } finally {
    await dh.close();
  }
  return true;
}

/** Creates the dir 0700, and tightens an existing one that others could read. */
async function privateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const st = await lstat(dir);
  if (!st.isDirectory()) fail('identity_invalid', `${dir} is not a directory`);
  if ((st.mode & 0o077) !== 0) await chmod(dir, 0o700);
}
