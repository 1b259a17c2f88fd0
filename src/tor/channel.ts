/**
 * The stream granax's TorController is given instead of the raw control socket.
 *
 * Why: granax 3.2.0 splits replies per socket chunk and ends a reply at any line with a space at
 * index 3, so multi-line (250+) replies are mis-framed and, because it matches replies to
 * commands only by order, one bad frame shifts every later reply onto the wrong callback. Here
 * the real socket is framed correctly (ReplyFramer), every command granax writes is paired with
 * exactly one reply in write order, and granax receives each reply as one object it cannot
 * mis-split (data blocks dropped, '+' turned into '-'). The caller of each command gets the
 * exact reply through a claim, so granax's lossy parsers (values cut at '=', key padding lost)
 * are never relied on. Asynchronous events (6xx) are kept from granax and emitted here.
 */
import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { P2pdbError } from '../errors.js';
import { ReplyFramer, type Reply } from './framing.js';

interface Claim {
  verb: string;
  resolve: (reply: Reply) => void;
  reject: (err: P2pdbError) => void;
}

export class ControlChannel extends Duplex {
  private readonly framer = new ReplyFramer();
  /** Claims registered but whose command granax has not written yet, in call order. */
  private readonly claims: Claim[] = [];
  /** Commands written to tor and not answered yet, in write order (= tor's answer order). */
  private readonly inFlight: Claim[] = [];
  private failure: P2pdbError | null = null;
  private readonly eventListeners = new Set<(reply: Reply) => void>();
  private readonly closeListeners = new Set<(err: P2pdbError) => void>();

  constructor(private readonly socket: Socket) {
    // Object mode on the readable side: each push reaches granax as its own chunk, never merged.
    super({ readableObjectMode: true, decodeStrings: true });
    socket.on('connect', () => this.emit('connect'));
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.shutdown(new P2pdbError('tor_control', `control connection: ${err.message}`)));
    socket.on('close', () => this.shutdown(new P2pdbError('tor_control', 'control connection closed')));
  }

  /**
   * Reserves the reply of the next command written (it must start with `verb`). Call it right
   * before the granax method that writes that command; claims are consumed in write order.
   */
  claim(verb: string): Promise<Reply> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<Reply>((resolve, reject) => this.claims.push({ verb, resolve, reject }));
  }

  onEvent(listener: (reply: Reply) => void): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  onClose(listener: (err: P2pdbError) => void): void {
    if (this.failure) listener(this.failure);
    else this.closeListeners.add(listener);
  }

  get closedWith(): P2pdbError | null {
    return this.failure;
  }

  close(): void {
    this.shutdown(new P2pdbError('tor_control', 'control connection closed by us'));
  }

  override _read(): void {
    // Replies are pushed as they arrive; granax reads everything, so there is nothing to pull.
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    if (this.failure) return done(this.failure);
    const command = chunk.toString('utf8');
    const verb = command.replace(/^\+/, '').split(/[ \r\n]/, 1)[0] ?? '';
    const claim = this.claims.shift();
    // Every write must be one we announced: an unannounced command would get someone else's reply.
    if (!claim || claim.verb !== verb || /[\r\n]/.test(command.replace(/\r\n$/, ''))) {
      const err = new P2pdbError('tor_control', `unexpected control command ${JSON.stringify(verb)} (expected ${claim?.verb ?? 'none'})`);
      if (claim) claim.reject(err);
      this.shutdown(err);
      return done(err);
    }
    this.inFlight.push(claim);
    this.socket.write(chunk, (err) => done(err ?? null));
  }

  private onData(chunk: Buffer): void {
    let replies: Reply[];
    try {
      replies = this.framer.push(chunk);
    } catch (err) {
      this.shutdown(err instanceof P2pdbError ? err : new P2pdbError('tor_control', String(err)));
      return;
    }
    // A throwing event listener must not leave later replies of this chunk unrouted: finish
    // routing, then rethrow as an EventEmitter would.
    let listenerError: unknown;
    for (const reply of replies) {
      if (reply.code >= 600 && reply.code < 700) {
        for (const l of this.eventListeners) {
          try {
            l(reply);
          } catch (err) {
            listenerError ??= err;
          }
        }
        continue;
      }
      const claim = this.inFlight.shift();
      if (!claim) {
        this.shutdown(new P2pdbError('tor_control', `reply ${reply.code} arrived with no command waiting`));
        return;
      }
      this.forwardToGranax(reply);
      claim.resolve(reply);
    }
    if (listenerError !== undefined) throw listenerError;
  }

  /** One reply as one chunk in the shape granax's splitter frames correctly. */
  private forwardToGranax(reply: Reply): void {
    const text = reply.lines.map((l) => `${l.code}${l.sep === '+' ? '-' : l.sep}${l.text}`).join('\r\n') + '\r\n';
    try {
      this.push(text);
    } catch {
      // granax's own parse of this reply failed; our caller has the exact reply through its claim.
    }
  }

  private shutdown(err: P2pdbError): void {
    if (this.failure) return;
    this.failure = err;
    for (const c of this.claims.splice(0)) c.reject(err);
    for (const c of this.inFlight.splice(0)) c.reject(err);
    this.socket.destroy();
    this.push(null);
    this.emit('close');
    for (const l of this.closeListeners) l(err);
    this.closeListeners.clear();
  }
}
