/**
 * Publishes the node's HTTP port as the v3 onion service of its identity key and keeps it
 * published: when the control connection closes (tor crashed or restarted) it reconnects with
 * backoff (the runtime restarts a managed tor) and adds the same key again. A tor that cannot
 * reach the network is reported, never fatal: the node keeps serving on loopback meanwhile.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { P2pdbError, fail, isP2pdbError, type ErrorCode } from '../errors.js';
import { torKeyBlob, type OnionIdentity } from '../identity/onion-key.js';
import type { BootstrapPhase, TorControl } from '../tor/control.js';
import { decodeDescriptor } from '../tor/hs-descriptor.js';
import { parseKeywordLine } from '../tor/replies.js';
import { SOCKS_ONION_REPLIES, socksConnectReply } from '../tor/socks.js';
import { newClientKeyPair } from '../identity/client-auth.js';
import type { Logger } from '../util/log.js';
import type { TorLink, TorRuntime } from './tor-runtime.js';

export interface OnionState {
  bootstrap: { progress: number; summary: string };
  /** True once tor has uploaded the descriptor since the onion was last (re)added. */
  published: boolean;
  lastError?: { code: ErrorCode; message: string };
  /** The managed tor's pid while it runs. */
  torPid?: number;
  /** What the last ADD_ONION turned on, and what the published descriptor showed. */
  defences?: DefenceReport;
  /** Client authorization of the last ADD_ONION: private with N keys, or public (0). */
  clientAuth: { clients: number };
  /** How many times the node has added its onion since start (reconnects and republishes count). */
  publishCount: number;
  selfCheck: SelfCheckState;
}

/** The node dialling its own onion through its own tor (self-healing reachability). */
export interface SelfCheckState {
  /** ms since the epoch of the last check that got a stream to our onion. */
  lastOkAt?: number;
  lastCheckAt?: number;
  consecutiveFailures: number;
  lastFailure?: string;
  /** Re-publishes and managed-tor restarts the self-check caused. */
  republishes: number;
  torRestarts: number;
}

export interface SelfCheckOptions {
  /** Between checks; 0 turns the self-check off. Default 60 s. */
  intervalMs: number;
  /** One check's deadline (descriptor fetch + introduction + rendezvous). Default 30 s. */
  timeoutMs: number;
  /** Consecutive failures before DEL_ONION/ADD_ONION with the same key. Default 3. */
  republishAfter: number;
  /** Consecutive failures before a managed tor is restarted (attach: re-publish again). Default 6. */
  restartTorAfter: number;
}

export const DEFAULT_SELF_CHECK: SelfCheckOptions = { intervalMs: 60_000, timeoutMs: 30_000, republishAfter: 3, restartTorAfter: 6 };

/** The onion-service DoS defences asked for (config: onionPow*, onionMaxStreams). */
export interface OnionDefences {
  /** PoWDefensesEnabled=1 where tor has it (ADD_ONION keywords since 0.4.9.2-alpha). */
  pow: boolean;
  /** Introductions per second the service takes from the PoW priority queue, and its burst. */
  powQueueRate: number;
  powQueueBurst: number;
  /** Concurrent streams per rendezvous circuit; past it the circuit is closed. 0: no limit. */
  maxStreams: number;
}

export const DEFAULT_DEFENCES: OnionDefences = { pow: true, powQueueRate: 250, powQueueBurst: 2500, maxStreams: 64 };

export interface DefenceReport {
  torVersion: string;
  pow: { state: 'on' | 'off' | 'unsupported'; queueRate?: number; queueBurst?: number; reason?: string };
  maxStreams: { state: 'on' | 'off' | 'unsupported'; limit?: number; reason?: string };
  /**
   * HiddenServiceEnableIntroDoSDefense is a torrc option of HiddenServiceDir services only:
   * ADD_ONION has no keyword for it (tor 0.4.9.11 answers `512 … Unrecognized keyword
   * argument`), so intro points apply the network's consensus parameters to us.
   */
  introDos: { state: 'not settable'; reason: string };
  /** Set once tor has uploaded a descriptor: whether that descriptor advertises pow-params. */
  powInDescriptor?: boolean;
}

/** The first tor whose ADD_ONION takes PoWDefensesEnabled / PoWQueueRate / PoWQueueBurst. */
const POW_ADD_ONION_SINCE = [0, 4, 9, 2] as const;

/** "0.4.9.11 (git-…)" → [0,4,9,11]; undefined when tor says something else. */
export function parseTorVersion(text: string): number[] | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)(?:\.(\d+))?/.exec(text.trim());
  return m ? [Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4] ?? 0)] : undefined;
}

export function versionAtLeast(v: number[], min: readonly number[]): boolean {
  for (let i = 0; i < min.length; i++) {
    const a = v[i] ?? 0;
    if (a !== min[i]) return a > min[i]!;
  }
  return true;
}

/** One line per defence, for the log and for `serve`'s plain output. */
export function describeDefences(r: DefenceReport): string[] {
  const pow =
    r.pow.state === 'on'
      ? `proof of work on (queue ${r.pow.queueRate}/s, burst ${r.pow.queueBurst})${r.powInDescriptor === true ? ', advertised in the published descriptor' : r.powInDescriptor === false ? ', BUT MISSING from the published descriptor' : ''}`
      : `proof of work ${r.pow.state === 'off' ? 'off' : 'not available'}${r.pow.reason ? ` (${r.pow.reason})` : ''}`;
  const streams =
    r.maxStreams.state === 'on'
      ? `at most ${r.maxStreams.limit} streams per circuit (circuit closed past it)`
      : `no stream limit per circuit${r.maxStreams.reason ? ` (${r.maxStreams.reason})` : ''}`;
  return [pow, streams, `intro-point rate limit not set by p2pdb (${r.introDos.reason})`];
}

export interface OnionService {
  /** "<56 base32 chars>.onion": the node's id. */
  readonly address: string;
  /** tor's SOCKS port on 127.0.0.1, for dialing peers (peerAgent). */
  readonly socksPort: number;
  state(): OnionState;
  /**
   * DEL_ONION and ADD_ONION again with the same key on the current control connection, reading
   * the client keys afresh (a private node's new key set). Calls are serialised; resolves when
   * tor has accepted the onion again (not when the descriptor is uploaded).
   */
  republish(reason: string): Promise<void>;
  /** The ClientAuthV3 keys the onion was last added with (sorted). */
  publishedClientKeys(): string[];
  /** DEL_ONION, then stops a managed tor. */
  stop(): Promise<void>;
}

export interface OnionServiceOptions {
  identity: OnionIdentity;
  runtime: TorRuntime;
  /** The node's HTTP port on 127.0.0.1 (the onion's port 80 leads there). */
  targetPort: number;
  log: Logger;
  /** Without 100% bootstrap after this long, say that tor cannot reach the network (and keep waiting). */
  bootstrapDeadlineMs?: number;
  retryMinMs?: number;
  retryMaxMs?: number;
  /** Defaults to DEFAULT_DEFENCES. */
  defences?: OnionDefences;
  /**
   * The base32 x25519 public keys of the clients allowed to reach the node (a private node),
   * read at every publish; none: a public onion. A rejection fails the publish: a node whose
   * key list cannot be read must not fall back to being public.
   */
  clientKeys?: () => Promise<string[]>;
  /** Defaults to DEFAULT_SELF_CHECK. */
  selfCheck?: Partial<SelfCheckOptions>;
}

export const ONION_VIRTUAL_PORT = 80;

/**
 * Resolves once tor runs and has accepted the onion (not once it is reachable: that needs a
 * network). Rejects when the first attempt fails (tor missing, control port refused, a wrong
 * service id): configuration errors are loud at start, later failures are retried.
 */
export async function startOnionService(opts: OnionServiceOptions): Promise<OnionService> {
  const { identity, runtime, log } = opts;
  const address = identity.address;
  const serviceId = address.slice(0, -'.onion'.length);
  const deadlineMs = opts.bootstrapDeadlineMs ?? 60_000;
  const retryMin = opts.retryMinMs ?? 500;
  const retryMax = opts.retryMaxMs ?? 15_000;
  const abort = new AbortController();
  let stopping = false;
  let current: TorLink | undefined;
  let socksPort = 0;
  let published = false;
  let bootstrap = { progress: 0, summary: 'starting' };
  let lastError: OnionState['lastError'];
  let lastWarning = '';
  const wanted = opts.defences ?? DEFAULT_DEFENCES;
  let defences: DefenceReport | undefined;
  let reportedDefences = '';
  let clientKeys: string[] = [];
  let publishCount = 0;
  let lastAddedAt = 0;
  const check: SelfCheckOptions = { ...DEFAULT_SELF_CHECK, ...opts.selfCheck };
  const selfCheck: SelfCheckState = { consecutiveFailures: 0, republishes: 0, torRestarts: 0 };
  // A private node's own tor needs a key to reach its onion: one per process, in memory only,
  // added to the published keys and given to our tor with ONION_CLIENT_AUTH_ADD.
  const selfKey = newClientKeyPair();

  const setError = (err: unknown, context: string) => {
    const e = isP2pdbError(err) ? err : new P2pdbError('internal', String(err));
    lastError = { code: e.code, message: `${context}: ${e.message}` };
  };
  const noNetwork = (message: string) => {
    lastError = { code: 'tor_no_network', message };
    log.warn('tor cannot reach the Tor network', { detail: message, note: 'the node keeps serving on loopback and tor keeps trying' });
  };

  const onPhase = (phase: BootstrapPhase) => {
    if (phase.progress !== bootstrap.progress || phase.summary !== bootstrap.summary) {
      bootstrap = { progress: phase.progress, summary: phase.summary };
      log.info('tor bootstrap', { progress: phase.progress, summary: phase.summary });
    }
    if (phase.progress >= 100) {
      lastWarning = ''; // a later outage is reported again
      if (lastError?.code === 'tor_no_network') lastError = undefined;
    }
  };

  /** Follows bootstrap on this connection until 100% or until it closes, complaining at each deadline. */
  const watchBootstrap = async (control: TorControl) => {
    let closed = false;
    void control.closed.then(() => (closed = true));
    // Tor reports every failed connection; it recommends warning only once they keep failing
    // (RECOMMENDATION=warn, e.g. after 10 refusals), so one relay being down is not reported.
    const off = control.onEvent('STATUS_CLIENT', (ev) => {
      const { words, values } = parseKeywordLine(ev.text);
      if (words[1] !== 'BOOTSTRAP' || values.RECOMMENDATION !== 'warn') return;
      const problem = `${values.WARNING ?? 'unknown problem'} (${values.REASON ?? 'no reason given'})`;
      if (problem === lastWarning) return;
      lastWarning = problem;
      noNetwork(`tor reports at ${bootstrap.progress}% (${bootstrap.summary}): ${problem}${values.HOSTADDR ? `, last with ${values.HOSTADDR}` : ''}`);
    });
    try {
      for (let waited = deadlineMs; !stopping && !closed; waited += deadlineMs) {
        try {
          await control.waitForBootstrap(onPhase, deadlineMs);
          return;
        } catch (err) {
          if (closed || stopping || !isP2pdbError(err) || err.code !== 'tor_timeout') return;
          noNetwork(`no connection to the Tor network after ${Math.round(waited / 1000)} s (at ${bootstrap.progress}%: ${bootstrap.summary})`);
        }
      }
    } finally {
      off();
    }
  };

  /**
   * ADD_ONION with the defences tor supports. Feature detection is by version and by trying:
   * a tor older than 0.4.9.2 is not sent the PoW keywords at all, and a tor that refuses a
   * keyword anyway (a build without the PoW module, a fork) gets the command again without it,
   * so a missing defence never keeps the node offline. What ended up on is logged plainly.
   */
  const publish = async (control: TorControl) => {
    // Read before anything is removed: an unreadable key list leaves what is published alone.
    const keys = [...new Set(opts.clientKeys ? await opts.clientKeys() : [])].sort();
    const detached = await control.getInfo('onions/detached').then((v) => v.split('\n'), () => [] as string[]);
    if (detached.includes(serviceId)) await control.delOnion(serviceId);
    const versionText = await control.getInfo('version').catch(() => 'unknown');
    const version = parseTorVersion(versionText);
    const report: DefenceReport = {
      torVersion: versionText.split(' ')[0] ?? versionText,
      pow: wanted.pow ? { state: 'on', queueRate: wanted.powQueueRate, queueBurst: wanted.powQueueBurst } : { state: 'off', reason: 'turned off in the configuration' },
      maxStreams: wanted.maxStreams > 0 ? { state: 'on', limit: wanted.maxStreams } : { state: 'off', reason: 'onionMaxStreams is 0' },
      introDos: { state: 'not settable', reason: "ADD_ONION has no keyword for HiddenServiceEnableIntroDoSDefense; intro points use the Tor network's consensus defaults" },
    };
    if (report.pow.state === 'on' && !(version && versionAtLeast(version, POW_ADD_ONION_SINCE))) {
      report.pow = { state: 'unsupported', reason: `tor ${report.torVersion} is older than 0.4.9.2, whose ADD_ONION first takes PoWDefensesEnabled; upgrade tor to get it` };
    }
    for (;;) {
      try {
        const added = await control.addOnion({
          keyType: 'ED25519-V3',
          keyBlob: torKeyBlob(identity.seed),
          virtualPort: ONION_VIRTUAL_PORT,
          target: `127.0.0.1:${opts.targetPort}`,
          // Survives a dropped control connection; stop() removes it with DEL_ONION.
          detach: true,
          ...(report.maxStreams.state === 'on' ? { maxStreams: report.maxStreams.limit!, maxStreamsCloseCircuit: true } : {}),
          ...(report.pow.state === 'on' ? { pow: { queueRate: report.pow.queueRate!, queueBurst: report.pow.queueBurst! } } : {}),
          ...(keys.length > 0 ? { clientAuthV3: [...keys, selfKey.publicKey] } : {}),
        });
        if (added.serviceId !== serviceId) {
          await control.delOnion(added.serviceId).catch(() => {});
          fail('onion_mismatch', `tor published ${added.serviceId}.onion for our key, whose address is ${address}: refusing to run under another name`);
        }
        break;
      } catch (err) {
        // 512/513: tor did not take an argument. Drop the defence it names (PoW first), then try again.
        if (!isP2pdbError(err) || err.code !== 'tor_command_failed' || !/ADD_ONION: 51[23] /.test(err.message)) throw err;
        const said = err.message.replace(/^ADD_ONION: /, '');
        if (report.pow.state === 'on' && !/MaxStreams/i.test(said)) {
          report.pow = { state: 'unsupported', reason: `tor ${report.torVersion} refused it: ${said}` };
        } else if (report.maxStreams.state === 'on') {
          report.maxStreams = { state: 'unsupported', reason: `tor ${report.torVersion} refused it: ${said}` };
        } else throw err;
      }
    }
    defences = report;
    // DEL_ONION keeps rendezvous circuits open "for existing connections to finish", and the
    // re-added service (same key) serves them: a revoked client would stay connected. So when a
    // key goes away every client's rendezvous circuit is closed; clients that still hold a
    // valid key reconnect through the new descriptor, a revoked one cannot.
    const revoked = clientKeys.filter((k) => !keys.includes(k));
    if (publishCount > 0 && (revoked.length > 0 || (clientKeys.length === 0 && keys.length > 0))) {
      const circuits = await control.serviceRendCircuits(serviceId).catch(() => [] as string[]);
      for (const id of circuits) await control.closeCircuit(id).catch(() => {});
      log.info('closed the connections of clients to the onion: a client key was revoked or the node became private', { circuits: circuits.length, revoked: revoked.length });
    }
    clientKeys = keys;
    publishCount++;
    lastAddedAt = Date.now();
    if (keys.length > 0) {
      await control.onionClientAuthAdd(serviceId, selfKey.privateKey).catch((err: Error) =>
        log.warn("cannot give our own tor the node's self-check key; the self-check will fail on this private node", { message: err.message }),
      );
    }
    if (keys.length > 0) log.info('onion published as a private node', { authorized_clients: keys.length, note: 'reachable only by tors holding one of these client keys' });
    const summary = describeDefences(report).join('; ');
    if (summary !== reportedDefences) {
      reportedDefences = summary;
      log.info('onion service DoS defences', { tor_version: report.torVersion, defences: describeDefences(report) });
    }
  };

  /**
   * Reads the descriptor tor has just uploaded (its own plaintext-encoded copy, decrypted the way
   * a client does) and records whether it advertises pow-params: evidence that the defence is
   * on in the network, not only that the keyword was accepted.
   */
  const checkPublishedDescriptor = async (control: TorControl) => {
    const report = defences;
    if (!report || report.pow.state !== 'on' || report.powInDescriptor !== undefined) return;
    try {
      const decoded = decodeDescriptor(await control.getInfo(`hs/service/desc/id/${serviceId}`), address);
      report.powInDescriptor = decoded.pow !== undefined;
      if (decoded.pow) log.info('proof-of-work defence advertised in the published descriptor', { suggested_effort: decoded.pow.suggestedEffort, seed_expires: decoded.pow.expires });
      else log.warn('tor took PoWDefensesEnabled but the published descriptor has no pow-params (a tor built without the PoW module?)', { tor_version: report.torVersion });
    } catch (err) {
      log.debug('could not read back the published descriptor', { message: (err as Error).message });
    }
  };

  const connectAndPublish = async (): Promise<TorLink> => {
    const link = await runtime.connect();
    try {
      socksPort = link.socksPort;
      published = false;
      link.control.onEvent('HS_DESC', (ev) => {
        if (!ev.text.startsWith(`UPLOADED ${serviceId} `) || published) return;
        published = true;
        if (lastError?.code !== 'tor_no_network') lastError = undefined;
        log.info('onion service published', { address });
        void checkPublishedDescriptor(link.control);
      });
      await link.control.subscribe(['HS_DESC']);
      await publish(link.control);
      void watchBootstrap(link.control);
      return link;
    } catch (err) {
      link.control.close();
      throw err;
    }
  };

  /**
   * DEL_ONION, waiting at most 5 s for tor's answer. The wait's timer is cleared as soon as
   * tor answers or the connection drops: a pending timer kept the process alive for its full
   * 5 s after everything else had stopped (serve took 5.1 s to exit after Ctrl-C).
   */
  const release = async (link: TorLink) => {
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), 5_000)));
    // A Ctrl-C in a terminal reaches the managed tor too, and tor quits at once: then the
    // connection is already gone and there is nothing to remove.
    const gone = link.control.closed.then(() => 'gone' as const);
    try {
      const outcome = await Promise.race([link.control.delOnion(serviceId).then(() => 'removed' as const), gone, gaveUp]);
      if (outcome === 'removed') log.info('onion service removed', { address });
      else if (outcome === 'gone') log.info('tor has already exited; nothing to remove', { address });
      else log.warn('tor did not answer DEL_ONION within 5 s; going on', { address });
    } catch (err) {
      // Mostly the same case, seen as a reset connection before its close.
      log.info('tor did not take DEL_ONION (it has probably exited already)', { message: (err as Error).message });
    } finally {
      clearTimeout(timer);
    }
    link.control.close();
  };

  const reconnect = async (): Promise<TorLink | undefined> => {
    for (let attempt = 0; !stopping; attempt++) {
      try {
        const link = await connectAndPublish();
        if (stopping) {
          await release(link);
          return undefined;
        }
        log.info('tor control reconnected; onion added again', { address, attempt: attempt + 1 });
        return link;
      } catch (err) {
        setError(err, 'reconnecting to tor');
        const waitMs = attempt === 0 ? retryMin : Math.min(retryMax, retryMin * 2 ** attempt);
        const fields = { code: lastError?.code, message: lastError?.message, retry_in_ms: waitMs };
        if (isP2pdbError(err) && err.code === 'onion_mismatch') log.error('tor published another onion for our key', fields);
        else log.warn('tor reconnect failed', fields);
        await sleep(waitMs, undefined, { signal: abort.signal }).catch(() => {});
      }
    }
    return undefined;
  };

  try {
    current = await connectAndPublish();
  } catch (err) {
    await runtime.stop();
    throw err;
  }
  log.info('onion service added', { address, mode: runtime.mode, socks_port: socksPort });

  const supervisor = (async () => {
    while (current) {
      const why = await current.control.closed;
      current = undefined;
      if (stopping) return;
      published = false;
      bootstrap = { progress: 0, summary: 'reconnecting to tor' };
      setError(why, 'lost the tor control connection');
      log.warn('tor control connection lost; reconnecting', { reason: why.message, restart_tor: runtime.mode === 'managed' });
      current = await reconnect();
    }
  })();

  /**
   * Every intervalMs: one SOCKS stream to our own onion through our own tor (a stream is only
   * set up once tor has fetched the descriptor, introduced, met at the rendezvous point and
   * connected to our HTTP port, so success means reachable end to end). After republishAfter
   * failures in a row the onion is re-published; after restartTorAfter a managed tor is
   * restarted (an attached tor gets another re-publish).
   */
  const selfCheckLoop = async () => {
    if (check.intervalMs <= 0) return;
    while (!stopping) {
      await sleep(check.intervalMs, undefined, { signal: abort.signal }).catch(() => {});
      if (stopping) return;
      if (!current || bootstrap.progress < 100) {
        selfCheck.consecutiveFailures = 0; // the supervisor or bootstrap reporting covers this
        continue;
      }
      // Just (re-)added: the descriptor is not uploaded yet, so a failure says nothing; a
      // re-publish every other check would only keep changing the intro points.
      if (!published && Date.now() - lastAddedAt < 60_000) continue;
      selfCheck.lastCheckAt = Date.now();
      let failure: string | undefined;
      try {
        const code = await socksConnectReply(socksPort, address, ONION_VIRTUAL_PORT, check.timeoutMs, abort.signal);
        if (code !== 0) failure = `SOCKS reply 0x${code.toString(16)} (${SOCKS_ONION_REPLIES[code] ?? 'unknown'})`;
      } catch (err) {
        failure = (err as Error).message;
      }
      if (stopping) return;
      if (failure === undefined) {
        if (selfCheck.consecutiveFailures > 0) log.info('self-check: our onion is reachable again', { after_failures: selfCheck.consecutiveFailures });
        selfCheck.consecutiveFailures = 0;
        selfCheck.lastOkAt = Date.now();
        delete selfCheck.lastFailure;
        continue;
      }
      selfCheck.consecutiveFailures++;
      selfCheck.lastFailure = failure;
      // Our tor's client side may hold a stale copy of our own descriptor (old intro points):
      // fetch the current one, so the next check tests the service, not the cache.
      void current?.control.hsFetch(serviceId).catch(() => {});
      const n = selfCheck.consecutiveFailures;
      log.warn('self-check: our onion did not answer through our own tor', { failures_in_a_row: n, reason: failure });
      if (n >= check.restartTorAfter && runtime.mode === 'managed') {
        log.warn('self-check: restarting tor', { failures_in_a_row: n });
        selfCheck.consecutiveFailures = 0;
        selfCheck.torRestarts++;
        // The supervisor sees the control connection close and reconnects: a fresh tor, the same onion.
        await runtime.restart().catch((err: Error) => log.warn('self-check: restarting tor failed', { message: err.message }));
      } else if (n >= check.republishAfter && (n - check.republishAfter) % check.republishAfter === 0) {
        selfCheck.republishes++;
        await republish(`self-check failed ${n} times in a row`).catch(() => {});
      }
    }
  };

  let republishing: Promise<void> = Promise.resolve();
  const republish = (reason: string): Promise<void> => {
    const run = republishing.then(async () => {
      const link = current;
      if (stopping || !link) return; // the supervisor publishes afresh once it has reconnected
      log.info('re-publishing the onion service', { address, reason });
      published = false;
      if (defences) delete defences.powInDescriptor;
      try {
        await publish(link.control);
      } catch (err) {
        setError(err, `re-publishing (${reason})`);
        log.warn('re-publishing the onion service failed', { reason, code: lastError?.code, message: lastError?.message });
        throw err;
      }
    });
    republishing = run.catch(() => {});
    return run;
  };

  const checking = selfCheckLoop();

  let stopped: Promise<void> | undefined;
  return {
    address,
    get socksPort() {
      return socksPort;
    },
    state() {
      const pid = runtime.pid();
      return {
        bootstrap: { ...bootstrap },
        published,
        ...(lastError ? { lastError: { ...lastError } } : {}),
        ...(pid !== undefined ? { torPid: pid } : {}),
        ...(defences ? { defences: structuredClone(defences) } : {}),
        clientAuth: { clients: clientKeys.length },
        publishCount,
        selfCheck: { ...selfCheck },
      };
    },
    republish,
    publishedClientKeys: () => [...clientKeys],
    stop() {
      stopped ??= (async () => {
        stopping = true;
        abort.abort();
        const link = current;
        if (link) await release(link);
        if (runtime.mode === 'managed') log.info('stopping tor', { pid: runtime.pid() ?? null });
        await runtime.stop();
        await supervisor;
        await checking;
        published = false;
      })();
      return stopped;
    },
  };
}
