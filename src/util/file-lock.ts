/**
 * A lock file for short read-modify-write sections shared between processes (the keyring: two
 * `p2pdb keys new` at once must not lose a key). Created with O_EXCL, holding the owner's pid;
 * a lock whose owner is gone, or older than staleMs, is taken over. Hold it for milliseconds
 * only: never across a prompt or a key generation.
 */
import { open, readFile, rm, stat } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { fail } from '../errors.js';

export interface FileLockOptions {
  /** Give up (busy) after waiting this long. Default 10 s. */
  waitMs?: number;
  /** A lock older than this is a leftover whatever its pid says. Default 30 s. */
  staleMs?: number;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The lock's inode when it was left by a dead process or is too old; undefined if it is gone or live. */
async function staleLock(file: string, staleMs: number): Promise<number | undefined> {
  try {
    const [text, st] = await Promise.all([readFile(file, 'utf8'), stat(file)]);
    if (Date.now() - st.mtimeMs > staleMs) return st.ino;
    const pid = Number(text.trim());
    // An empty file is a lock being written right now.
    const dead = text.trim() !== '' && (!Number.isInteger(pid) || pid <= 0 || !processAlive(pid));
    return dead ? st.ino : undefined;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Removes the lock only if it is still the stale one (another waiter may have taken over meanwhile). */
async function removeIfSame(file: string, ino: number): Promise<void> {
  try {
    if ((await stat(file)).ino === ino) await rm(file, { force: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

export async function withFileLock<T>(file: string, body: () => Promise<T>, opts: FileLockOptions = {}): Promise<T> {
  const deadline = Date.now() + (opts.waitMs ?? 10_000);
  const staleMs = opts.staleMs ?? 30_000;
  let pause = 10;
  for (;;) {
    try {
      const fh = await open(file, 'wx', 0o600);
      try {
        await fh.writeFile(String(process.pid));
      } finally {
        await fh.close();
      }
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const stale = await staleLock(file, staleMs);
    if (stale !== undefined) {
      await removeIfSame(file, stale);
      continue;
    }
    if (Date.now() > deadline) fail('busy', `${file} is held by another process; try again`);
    await delay(pause);
    pause = Math.min(pause * 2, 200);
  }
  try {
    return await body();
  } finally {
    await rm(file, { force: true });
  }
}
