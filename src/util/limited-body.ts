/**
 * Reads an HTTP answer into memory with a bound on its size: the two HTTP clients (the client
 * library's agentFetch and the node's PeerClient) both read answers from parties they do not
 * trust to be small. Each caller names the error an oversize answer gets, because the two
 * report it differently (malformed from a node the user chose, peer_bad_answer from a peer).
 */
import type { Readable } from 'node:stream';

/**
 * The whole body, or a rejection: `tooLarge()` once more than `maxBytes` arrived (nothing more
 * is kept), or the stream's own error when the answer is cut off (an interrupted answer emits
 * 'error' after 'aborted'). Stopping the request is the caller's: it owns the connection.
 */
export function readLimitedBody(body: Readable, maxBytes: number, tooLarge: () => Error): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (err: Error | undefined) => {
      if (settled) return;
      settled = true;
      if (err) {
        chunks.length = 0;
        reject(err);
      } else resolve(Buffer.concat(chunks, size));
    };
    body.on('data', (chunk: Buffer) => {
      if (settled) return;
      size += chunk.length;
      if (size > maxBytes) settle(tooLarge());
      else chunks.push(chunk);
    });
    body.on('error', (err) => settle(err));
    body.on('end', () => settle(undefined));
  });
}
