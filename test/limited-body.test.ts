/**
 * The size-limited answer reader both HTTP clients use (src/util/limited-body.ts), against a
 * real HTTP server on loopback, and through agentFetch, which keeps its own oversize code.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { agentFetch } from '../src/client/transport.js';
import { P2pdbError } from '../src/errors.js';
import { readLimitedBody } from '../src/util/limited-body.js';

let server: http.Server;
let base: string;

before(async () => {
  server = http.createServer((req, res) => {
    if (req.url === '/cut') {
      // Promises 1,000 bytes, sends 10, then drops the connection.
      res.writeHead(200, { 'content-length': '1000' });
      res.write('x'.repeat(10));
      setTimeout(() => res.socket?.destroy(), 20);
      return;
    }
    const size = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('bytes') ?? 0);
    res.writeHead(200, { 'content-type': 'application/json' });
    // In several writes, so the limit is crossed mid-answer.
    for (let sent = 0; sent < size; sent += 1000) res.write('7'.repeat(Math.min(1000, size - sent)));
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => new Promise<void>((resolve) => server.close(() => resolve())));

function answer(path: string): Promise<{ req: http.ClientRequest; res: http.IncomingMessage }> {
  return new Promise((resolve, reject) => {
    const req = http.get(base + path, (res) => resolve({ req, res }));
    req.on('error', () => {});
    req.once('error', reject);
  });
}

test('reads a body up to the limit, exactly', async () => {
  const { res } = await answer('/?bytes=5000');
  const body = await readLimitedBody(res, 5000, () => new Error('too large'));
  assert.equal(body.length, 5000);
  assert.equal(body.toString(), '7'.repeat(5000));
});

test("a body past the limit is refused with the caller's error", async () => {
  const { req, res } = await answer('/?bytes=5001');
  const mine = new P2pdbError('peer_bad_answer', 'answer larger than 5000 bytes');
  await assert.rejects(readLimitedBody(res, 5000, () => mine), (e) => e === mine);
  req.destroy();
});

test('an answer cut off rejects with the stream error', async () => {
  const { res } = await answer('/cut');
  await assert.rejects(readLimitedBody(res, 5000, () => new Error('too large')), (e: NodeJS.ErrnoException) => e.code === 'ECONNRESET');
});

test('agentFetch keeps its own code for an oversize answer (malformed) and reads one that fits', async () => {
  const fetchSmall = agentFetch(undefined, 3000);
  const ok = await fetchSmall(`${base}/?bytes=3000`);
  assert.equal((await ok.text()).length, 3000);
  await assert.rejects(fetchSmall(`${base}/?bytes=3001`), (e) => e instanceof P2pdbError && e.code === 'malformed');
  await assert.rejects(fetchSmall(`${base}/cut`), (e: Error & { cause?: NodeJS.ErrnoException }) => e instanceof TypeError && e.cause?.code === 'ECONNRESET');
});
