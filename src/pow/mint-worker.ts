/**
 * A MintPool worker: builds and warms a search kernel, then searches the chunks it is sent,
 * one at a time, answering each with its result. Stopping a job is the pool's business: it
 * simply sends no more chunks, so a worker is never busy for longer than one chunk.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createKernel, warmUpKernel } from './sha256-kernel.js';
import type { SearchRequest, WorkerConfig, WorkerMessage } from './mint-protocol.js';

const port = parentPort!;
const config = workerData as WorkerConfig;
const kernel = createKernel(config.kernel);
const warmupMs = config.warmupMs > 0 ? warmUpKernel(kernel, config.warmupMs) : 0;

const send = (msg: WorkerMessage) => port.postMessage(msg);

port.on('message', (req: SearchRequest) => {
  const { job, id, bits, chunk } = req;
  try {
    const found = kernel.search(id, chunk.token, bits, chunk.start, chunk.count);
    const hashes = found === undefined ? chunk.count : found - chunk.start + 1;
    send({ type: 'result', job, chunk, nonce: found ?? -1, hashes });
  } catch (e) {
    send({ type: 'failed', job, message: e instanceof Error ? e.message : String(e) });
  }
});
send({ type: 'ready', kernel: kernel.kind, warmupMs });
