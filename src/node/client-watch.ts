/**
 * A running node follows DATA/identity/clients.json (`p2pdb clients add/remove` write it): when
 * the set of client keys differs from the one its onion was published with, it re-publishes
 * (DEL_ONION + ADD_ONION with the same onion key, so the address stays). fs.watch on the
 * identity directory sees the atomic rename; a slow poll backs it up for file systems whose
 * watch misses events.
 */
import { watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { clientsFile, readClients } from '../identity/client-auth.js';
import type { Logger } from '../util/log.js';
import type { OnionService } from './onion-service.js';

export interface ClientWatchOptions {
  dataDir: string;
  onion: OnionService;
  log: Logger;
  /** Quiet period after a change before reading the file. Default 200 ms. */
  debounceMs?: number;
  /** Backup poll. Default 30 s. */
  pollMs?: number;
}

/** Starts following the file; returns the function that stops it. */
export function watchClientKeys(opts: ClientWatchOptions): () => void {
  const { onion, log } = opts;
  const file = clientsFile(opts.dataDir);
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let running: Promise<void> = Promise.resolve();

  const check = () => {
    running = running.then(async () => {
      if (stopped) return;
      let keys: string[];
      try {
        keys = [...new Set((await readClients(opts.dataDir)).map((c) => c.publicKey))].sort();
      } catch (err) {
        log.warn('cannot read the authorized client keys; the onion stays published as it is', { file, message: (err as Error).message });
        return;
      }
      const published = onion.publishedClientKeys();
      if (keys.join(',') === published.join(',')) return;
      const reason = `client keys changed (${published.length} → ${keys.length})`;
      await onion.republish(reason).catch(() => {}); // logged and kept in lastError by republish
    });
  };
  const soon = () => {
    clearTimeout(timer);
    timer = setTimeout(check, opts.debounceMs ?? 200);
    timer.unref();
  };

  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(path.dirname(file), { persistent: false }, (_event, name) => {
      if (name === null || name === path.basename(file)) soon();
    });
    watcher.on('error', () => {});
  } catch {
    /* no identity dir yet or no inotify: the poll covers it */
  }
  const poll = setInterval(check, opts.pollMs ?? 30_000);
  poll.unref();
  return () => {
    stopped = true;
    clearTimeout(timer);
    clearInterval(poll);
    watcher?.close();
  };
}
