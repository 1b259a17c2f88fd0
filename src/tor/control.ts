/**
 * p2pdb's one wrapper over Tor's control port. Commands are sent by granax's TorController (the
 * controller the project chose); replies are framed and routed by ControlChannel (channel.ts,
 * which explains why) and parsed by replies.ts, so granax's quirks stay inside src/tor.
 */
import net from 'node:net';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import granax, { type TorController } from 'granax';
import { P2pdbError, fail } from '../errors.js';
import { ControlChannel } from './channel.js';
import type { Reply } from './framing.js';
import {
  assertOk,
  parseAddOnion,
  parseBootstrapPhase,
  parseEvent,
  parseGetConf,
  parseGetInfo,
  parseKeywordLine,
  type BootstrapPhase,
  type TorEvent,
} from './replies.js';

export type { BootstrapPhase, TorEvent };

export interface ControlConnectOptions {
  /** TCP control port on 127.0.0.1 (the only host we ever dial). */
  port?: number;
  /** Or a unix-socket control port. */
  socketPath?: string;
  /** HASHEDPASSWORD auth; otherwise SAFECOOKIE/COOKIE with the cookie file Tor names. */
  password?: string;
  /** Read the cookie from here instead of the path Tor reports in PROTOCOLINFO. */
  cookiePath?: string;
  /** Connect + authenticate deadline. */
  timeoutMs?: number;
}

export interface AddOnionOptions {
  keyType?: 'ED25519-V3';
  /** Base64 of the 64-byte expanded ed25519 secret key, or 'NEW' for a fresh key. */
  keyBlob: string | 'NEW';
  virtualPort: number;
  /** Where Tor forwards connections: always '127.0.0.1:PORT'. */
  target: string;
  /** Keep the onion after this control connection closes. */
  detach?: boolean;
  /** MaxStreams=N: at most N concurrent streams per rendezvous circuit (0: unlimited). */
  maxStreams?: number;
  /** Flags=MaxStreamsCloseCircuit: a circuit that goes past maxStreams is closed, not just refused the stream. */
  maxStreamsCloseCircuit?: boolean;
  /**
   * The onion-service proof-of-work defence (proposal 327; ADD_ONION keywords since tor
   * 0.4.9.2-alpha): PoWDefensesEnabled=1 with the queue's drain rate and burst (introductions
   * per second). Older tors refuse the keywords with 512/513.
   */
  pow?: { queueRate?: number; queueBurst?: number };
  /**
   * v3 client authorization: Flags=V3Auth and one `ClientAuthV3=<key>` per base32 x25519 public
   * key. With any, the descriptor is readable only by tors holding a matching private key.
   */
  clientAuthV3?: string[];
}

export interface OnionService {
  serviceId: string;
  /** Base64 key blob (padding intact) to re-add the same onion later. */
  privateKey: string;
}

const SERVER_HASH_KEY = 'Tor safe cookie authentication server-to-controller hash';
const CLIENT_HASH_KEY = 'Tor safe cookie authentication controller-to-server hash';
const KEY_BLOB = /^[A-Za-z0-9+/]{86}==$/;
const SERVICE_ID = /^[a-z2-7]{56}$/;
const TOKEN = /^[^\s"\\]+$/;

export class TorControl {
  private readonly subscriptions = new Map<string, number>();
  readonly closed: Promise<P2pdbError>;

  private constructor(
    private readonly channel: ControlChannel,
    private readonly controller: TorController,
  ) {
    this.closed = new Promise((resolve) => channel.onClose(resolve));
  }

  /** Connects and authenticates; rejects with tor_control (or tor_timeout) otherwise. */
  static async connect(opts: ControlConnectOptions): Promise<TorControl> {
    if ((opts.port === undefined) === (opts.socketPath === undefined)) {
      fail('tor_control', 'give exactly one of port and socketPath');
    }
    if (opts.port !== undefined && !(Number.isInteger(opts.port) && opts.port > 0 && opts.port < 65536)) {
      fail('tor_control', `bad control port ${opts.port}`);
    }
    const socket = new net.Socket();
    const channel = new ControlChannel(socket);
    const controller = new granax.TorController(channel, { authOnConnect: false });
    // granax re-emits socket errors; the channel already turns them into a typed close.
    controller.on('error', () => {});
    const control = new TorControl(channel, controller);
    const connected = new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      channel.onClose(reject);
    });
    if (opts.socketPath !== undefined) socket.connect(opts.socketPath);
    else socket.connect(opts.port!, '127.0.0.1');
    try {
      await withTimeout(
        (async () => {
          await connected;
          await control.authenticate(opts);
        })(),
        opts.timeoutMs ?? 10_000,
        'connecting to the control port',
      );
    } catch (err) {
      channel.close();
      throw err;
    }
    return control;
  }

  /** The full value of one GETINFO key (multi-line values as text joined with '\n'). */
  async getInfo(key: string): Promise<string> {
    checkToken(key, 'GETINFO key');
    const reply = await this.send('GETINFO', (cb) => this.controller.getInfo(key, cb));
    return parseGetInfo(reply, key);
  }

  async getBootstrapPhase(): Promise<BootstrapPhase> {
    return parseBootstrapPhase(await this.getInfo('status/bootstrap-phase'));
  }

  /**
   * Resolves when Tor reports 100%. Follows STATUS_CLIENT events (no polling); onProgress sees
   * the current phase first, then every change.
   */
  async waitForBootstrap(onProgress?: (phase: BootstrapPhase) => void, timeoutMs = 120_000): Promise<BootstrapPhase> {
    let finish!: (phase: BootstrapPhase) => void;
    let abort!: (err: unknown) => void;
    const done = new Promise<BootstrapPhase>((resolve, reject) => ((finish = resolve), (abort = reject)));
    done.catch(() => {}); // may settle before anyone awaits it (e.g. already at 100%)
    const off = this.onEvent('STATUS_CLIENT', (ev) => {
      if (!/^\S+ BOOTSTRAP /.test(ev.text)) return;
      try {
        const phase = parseBootstrapPhase(ev.text);
        onProgress?.(phase);
        if (phase.progress >= 100) finish(phase);
      } catch (err) {
        abort(err);
      }
    });
    try {
      await this.subscribe(['STATUS_CLIENT']);
      try {
        const now = await this.getBootstrapPhase();
        onProgress?.(now);
        if (now.progress >= 100) return now;
        return await withTimeout(
          Promise.race([done, this.closed.then((e) => Promise.reject(e))]),
          timeoutMs,
          'waiting for Tor to bootstrap',
        );
      } finally {
        // Cleanup only: a connection that closed meanwhile must not hide the real outcome.
        await this.unsubscribe(['STATUS_CLIENT']).catch(() => {});
      }
    } finally {
      off();
    }
  }

  async addOnion(opts: AddOnionOptions): Promise<OnionService> {
    if ((opts.keyType ?? 'ED25519-V3') !== 'ED25519-V3') fail('tor_control', 'only ED25519-V3 onion keys are supported');
    if (opts.keyBlob !== 'NEW' && !KEY_BLOB.test(opts.keyBlob)) {
      fail('tor_control', 'keyBlob must be the base64 (88 chars) of a 64-byte ed25519 secret key, or NEW');
    }
    if (!Number.isInteger(opts.virtualPort) || opts.virtualPort < 1 || opts.virtualPort > 65535) {
      fail('tor_control', `bad virtual port ${opts.virtualPort}`);
    }
    const target = /^127\.0\.0\.1:(\d{1,5})$/.exec(opts.target);
    if (!target || Number(target[1]) < 1 || Number(target[1]) > 65535) {
      fail('tor_control', `onion target must be 127.0.0.1:PORT, got ${JSON.stringify(opts.target)}`);
    }
    const command = addOnionCommand(opts); // validates first: a throw inside send() closes the connection
    const reply = await this.send('ADD_ONION', (cb) => this.controller._send(command, cb));
    const { serviceId, privateKey } = parseAddOnion(reply);
    const blob = privateKey ?? opts.keyBlob;
    if (!KEY_BLOB.test(blob)) fail('tor_control', 'ADD_ONION returned no usable private key');
    return { serviceId, privateKey: blob };
  }

  async delOnion(serviceId: string): Promise<void> {
    if (!SERVICE_ID.test(serviceId)) fail('tor_control', `not a v3 service id: ${serviceId}`);
    assertOk(await this.send('DEL_ONION', (cb) => this.controller.destroyHiddenService(serviceId, cb)), `DEL_ONION ${serviceId}`);
  }

  /**
   * ONION_CLIENT_AUTH_ADD: this tor may now open `serviceId`'s descriptor with the base32 x25519
   * private key (kept in memory only: no Flags=Permanent). Replaces a key it had for that onion.
   */
  async onionClientAuthAdd(serviceId: string, privateKey: string): Promise<void> {
    if (!SERVICE_ID.test(serviceId)) fail('tor_control', `not a v3 service id: ${serviceId}`);
    if (!/^[A-Za-z2-7]{52}$/.test(privateKey)) fail('tor_control', 'a client private key is 52 base32 characters');
    const command = `ONION_CLIENT_AUTH_ADD ${serviceId} x25519:${Buffer.from(base32ToBytes(privateKey)).toString('base64')}`;
    assertOk(await this.send('ONION_CLIENT_AUTH_ADD', (cb) => this.controller._send(command, cb)), `ONION_CLIENT_AUTH_ADD ${serviceId}`);
  }

  /** ONION_CLIENT_AUTH_REMOVE: forgets this tor's client key for `serviceId`. */
  async onionClientAuthRemove(serviceId: string): Promise<void> {
    if (!SERVICE_ID.test(serviceId)) fail('tor_control', `not a v3 service id: ${serviceId}`);
    assertOk(await this.send('ONION_CLIENT_AUTH_REMOVE', (cb) => this.controller._send(`ONION_CLIENT_AUTH_REMOVE ${serviceId}`, cb)), `ONION_CLIENT_AUTH_REMOVE ${serviceId}`);
  }

  /**
   * HSFETCH: asks the HSDirs for a v3 service's descriptor. Resolves once tor has accepted the
   * request; the outcome arrives as HS_DESC events (RECEIVED / FAILED) and the descriptor as
   * GETINFO hs/client/desc/id/<id>.
   */
  async hsFetch(serviceId: string): Promise<void> {
    if (!SERVICE_ID.test(serviceId)) fail('tor_control', `not a v3 service id: ${serviceId}`);
    assertOk(await this.send('HSFETCH', (cb) => this.controller.fetchHiddenServiceDescriptor(serviceId, '', cb)), `HSFETCH ${serviceId}`);
  }

  /**
   * The ids of this tor's circuits that serve rendezvous for `serviceId` (PURPOSE=HS_SERVICE_REND,
   * REND_QUERY=serviceId): one per connected client.
   */
  async serviceRendCircuits(serviceId: string): Promise<string[]> {
    if (!SERVICE_ID.test(serviceId)) fail('tor_control', `not a v3 service id: ${serviceId}`);
    const status = await this.getInfo('circuit-status');
    return status
      .split('\n')
      .filter((line) => /\bPURPOSE=HS_SERVICE_REND\b/.test(line) && line.includes(`REND_QUERY=${serviceId}`))
      .map((line) => line.split(' ')[0]!)
      .filter((id) => /^\d+$/.test(id));
  }

  /** CLOSECIRCUIT: tears one circuit down (tor sends DESTROY along it). */
  async closeCircuit(id: string): Promise<void> {
    if (!/^\d+$/.test(id)) fail('tor_control', `bad circuit id ${id}`);
    assertOk(await this.send('CLOSECIRCUIT', (cb) => this.controller._send(`CLOSECIRCUIT ${id}`, cb)), `CLOSECIRCUIT ${id}`);
  }

  /** Every value of a config option ([] when unset). */
  async getConf(key: string): Promise<string[]> {
    checkToken(key, 'GETCONF key');
    return parseGetConf(await this.send('GETCONF', (cb) => this.controller.getConfig(key, cb)), key);
  }

  async signal(name: string): Promise<void> {
    if (!/^[A-Z]+$/.test(name)) fail('tor_control', `bad signal name ${name}`);
    assertOk(await this.send('SIGNAL', (cb) => this.controller.signal(name, cb)), `SIGNAL ${name}`);
  }

  /**
   * Adds event types to this connection's subscription. SETEVENTS replaces the whole set, so
   * subscriptions are counted and the union is sent each time.
   */
  async subscribe(types: string[]): Promise<void> {
    const bad = types.find((t) => !/^[A-Z_]+$/.test(t));
    if (bad !== undefined) fail('tor_control', `bad event type ${bad}`);
    for (const t of types) this.subscriptions.set(t, (this.subscriptions.get(t) ?? 0) + 1);
    await this.sendEvents();
  }

  async unsubscribe(types: string[]): Promise<void> {
    for (const t of types) {
      const n = (this.subscriptions.get(t) ?? 0) - 1;
      if (n > 0) this.subscriptions.set(t, n);
      else this.subscriptions.delete(t);
    }
    await this.sendEvents();
  }

  /** Listens for one event type (subscribe to it too); returns the function that stops listening. */
  onEvent(type: string, listener: (event: TorEvent) => void): () => void {
    return this.channel.onEvent((reply) => {
      const event = parseEvent(reply);
      if (event.type === type) listener(event);
    });
  }

  /** Closes the connection; onions added without detach go away with it. */
  close(): void {
    this.channel.close();
  }

  private async sendEvents(): Promise<void> {
    const types = [...this.subscriptions.keys()];
    assertOk(await this.send('SETEVENTS', (cb) => this.controller.addEventListeners(types, cb)), 'SETEVENTS');
  }

  private async authenticate(opts: ControlConnectOptions): Promise<void> {
    const info = await this.send('PROTOCOLINFO', (cb) => this.controller.getProtocolInfo(cb));
    assertOk(info, 'PROTOCOLINFO');
    const auth = info.lines.map((l) => l.text).find((t) => t.startsWith('AUTH '));
    const { values } = parseKeywordLine(auth ?? '');
    const methods = (values.METHODS ?? '').split(',');
    let token: string;
    if (opts.password !== undefined) {
      if (!methods.includes('HASHEDPASSWORD')) fail('tor_control', `Tor does not accept a password (methods: ${methods.join(',')})`);
      token = `"${opts.password.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
    } else if (methods.includes('SAFECOOKIE') || methods.includes('COOKIE')) {
      const cookiePath = opts.cookiePath ?? values.COOKIEFILE;
      if (!cookiePath) fail('tor_control', 'Tor named no cookie file');
      const cookie = await readFile(cookiePath).catch((err: Error) => fail('tor_control', `reading the auth cookie: ${err.message}`));
      token = methods.includes('SAFECOOKIE') ? await this.safeCookieToken(cookie) : cookie.toString('hex');
    } else if (methods.includes('NULL')) {
      token = '';
    } else {
      fail('tor_control', `no usable auth method (Tor offers ${methods.join(',')})`);
    }
    const reply = await this.send('AUTHENTICATE', (cb) => this.controller.authenticate(token, cb));
    if (reply.code !== 250) fail('tor_control', `authentication refused: ${reply.code} ${reply.lines[0]?.text ?? ''}`);
  }

  /** SAFECOOKIE: prove we hold the cookie, and check that Tor does too before trusting it. */
  private async safeCookieToken(cookie: Buffer): Promise<string> {
    const clientNonce = randomBytes(32);
    const reply = await this.send('AUTHCHALLENGE', (cb) => this.controller.getAuthChallenge(clientNonce.toString('hex'), cb));
    assertOk(reply, 'AUTHCHALLENGE');
    const { values } = parseKeywordLine(reply.lines[0]?.text ?? '');
    const serverHash = Buffer.from(values.SERVERHASH ?? '', 'hex');
    const serverNonce = Buffer.from(values.SERVERNONCE ?? '', 'hex');
    const material = Buffer.concat([cookie, clientNonce, serverNonce]);
    const expected = createHmac('sha256', SERVER_HASH_KEY).update(material).digest();
    if (serverHash.length !== expected.length || !timingSafeEqual(serverHash, expected)) {
      fail('tor_control', 'SAFECOOKIE: Tor did not prove it knows the cookie');
    }
    return createHmac('sha256', CLIENT_HASH_KEY).update(material).digest('hex');
  }

  /** Claims the reply of the command `write` makes granax send, then waits for it. */
  private send(verb: string, write: (cb: (err: Error | null) => void) => void): Promise<Reply> {
    const reply = this.channel.claim(verb);
    try {
      // granax's own callback result is not used: the claim carries the exact reply.
      write(() => {});
    } catch (err) {
      this.channel.close();
      throw new P2pdbError('tor_control', `granax failed to send ${verb}: ${String(err)}`);
    }
    return reply;
  }
}

/** The ADD_ONION command line (validated by addOnion first). Exported for tests. */
export function addOnionCommand(opts: AddOnionOptions): string {
  const key = opts.keyBlob === 'NEW' ? 'NEW:ED25519-V3' : `ED25519-V3:${opts.keyBlob}`;
  const flags = [
    ...(opts.detach ? ['Detach'] : []),
    ...(opts.maxStreamsCloseCircuit ? ['MaxStreamsCloseCircuit'] : []),
    // tor 0.4.9 refuses ClientAuthV3 without it ("512 No auth type specified").
    ...((opts.clientAuthV3?.length ?? 0) > 0 ? ['V3Auth'] : []),
  ];
  const words = ['ADD_ONION', key];
  if (flags.length > 0) words.push(`Flags=${flags.join(',')}`);
  if (opts.maxStreams !== undefined) words.push(`MaxStreams=${uint(opts.maxStreams, 'maxStreams', 65535)}`);
  if (opts.pow) {
    words.push('PoWDefensesEnabled=1');
    if (opts.pow.queueRate !== undefined) words.push(`PoWQueueRate=${uint(opts.pow.queueRate, 'PoW queue rate', 2 ** 31 - 1)}`);
    if (opts.pow.queueBurst !== undefined) words.push(`PoWQueueBurst=${uint(opts.pow.queueBurst, 'PoW queue burst', 2 ** 31 - 1)}`);
  }
  for (const key of opts.clientAuthV3 ?? []) {
    if (!/^[A-Za-z2-7]{52}$/.test(key)) fail('tor_control', 'a ClientAuthV3 key is the base32 (52 chars) of an x25519 public key');
    words.push(`ClientAuthV3=${key}`);
  }
  words.push(`Port=${opts.virtualPort},${opts.target}`);
  return words.join(' ');
}

function base32ToBytes(text: string): Uint8Array {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const ch of text.toUpperCase()) {
    value = ((value << 5) | alphabet.indexOf(ch)) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Uint8Array.from(out);
}

function uint(n: number, what: string, max: number): number {
  if (!Number.isInteger(n) || n < 0 || n > max) fail('tor_control', `${what} must be an integer from 0 to ${max}, got ${n}`);
  return n;
}

function checkToken(value: string, what: string): void {
  if (!TOKEN.test(value)) fail('tor_control', `${what} must be one word: ${JSON.stringify(value)}`);
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new P2pdbError('tor_timeout', `timed out after ${ms} ms ${what}`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
