/** A verification worker: runs checkBody for the pool, keeping its own cache of parsed keys. */
import { parentPort, workerData } from 'node:worker_threads';
import { PublicKeyCache } from '../crypto/keys.js';
import type { EntryPolicy } from '../entry/validate.js';
import { checkBody, type CheckRequest } from './check-body.js';

// The policy is plain data (its table list an array), so it arrives as the pool sent it.
const { policy } = workerData as { policy: EntryPolicy };
const keys = new PublicKeyCache();

parentPort!.on('message', (msg: { job: number; req: CheckRequest }) => {
  try {
    const result = checkBody(msg.req, policy, keys);
    parentPort!.postMessage({ job: msg.job, result }, [result.packed]);
  } catch (e) {
    parentPort!.postMessage({ job: msg.job, crash: (e as Error).message });
  }
});
