/**
 * Requests Node's HTTP parser cannot read (truncated or badly framed, headers over the limit)
 * are answered with the same JSON error shape as every other refusal, then the connection is
 * closed. In order: when the bytes that failed to parse follow a request still being answered
 * on the same connection (a Content-Length shorter than what was sent, a pipelined second
 * request), the error waits for that answer, so a client learns what happened to the request
 * that did parse (it may have stored entries) instead of only that the rest was garbage.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

function errorAnswer(err: NodeJS.ErrnoException): string {
  const tooBig = err.code === 'HPE_HEADER_OVERFLOW';
  const status = tooBig ? '413 Payload Too Large' : '400 Bad Request'; // 413: the status httpStatusOf gives payload_too_large
  const body = JSON.stringify({
    error: tooBig
      ? { code: 'payload_too_large', message: 'request headers are too large' }
      : { code: 'malformed', message: 'the request could not be parsed (truncated or badly framed)' },
  });
  return `HTTP/1.1 ${status}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}

export function answerClientErrorsInOrder(server: Server): void {
  const inFlight = new WeakMap<Duplex, { requests: Set<IncomingMessage>; then?: () => void }>();
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    let state = inFlight.get(socket);
    if (!state) inFlight.set(socket, (state = { requests: new Set() }));
    const s = state;
    s.requests.add(req);
    // 'finish' (the answer is written) comes before Node closes the socket; 'close' covers an
    // answer that was aborted instead.
    const done = () => {
      if (!s.requests.delete(req)) return;
      if (s.requests.size === 0 && s.then) s.then();
    };
    res.once('finish', done);
    res.once('close', done);
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    const answer = () => {
      if (!socket.writable) socket.destroy();
      else socket.end(errorAnswer(err));
    };
    const state = inFlight.get(socket);
    // Wait only when every request in flight was read whole: the bad bytes come after them.
    // A request whose own body failed to parse can never be answered, so the error goes now.
    if (state && state.requests.size > 0 && [...state.requests].every((r) => r.complete)) state.then = answer;
    else answer();
  });
}
