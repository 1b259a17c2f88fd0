/**
 * Reading request bodies with an exact byte limit: raw-body answers 413 before buffering
 * more than allowed, and 400 when the body is shorter than its Content-Length.
 */
import getRawBody from 'raw-body';
import type { IncomingMessage } from 'node:http';
import { fail, P2pdbError } from '../errors.js';

export { bodyKind, type BodyKind } from '../ingest/parse-body.js';

/** `what` names the bound in the refusal ("one entry", …) so the sender knows which limit it hit. */
export async function readBody(req: IncomingMessage, limit: number, what?: string): Promise<Buffer> {
  try {
    return await getRawBody(req, { limit, length: req.headers['content-length'] });
  } catch (e) {
    const err = e as { type?: string; status?: number; message?: string };
    if (err.type === 'entity.too.large') fail('payload_too_large', `request body is larger than ${limit} bytes${what ? ` (the bound of ${what})` : ''}`);
    if (err.type === 'request.size.invalid' || err.type === 'request.aborted') {
      fail('malformed', 'request body is truncated (shorter than its Content-Length)');
    }
    throw new P2pdbError('bad_request', `could not read the request body: ${err.message ?? 'unknown error'}`);
  }
}
