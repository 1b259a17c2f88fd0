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
import { parseKeywordLine } from '../tor/replies.js';
import type { Logger } from '../util/log.js';
import type { TorLink, TorRuntime } from './tor-runtime.js';

export interface OnionState {
  bootstrap: { progress: number; summary: string };
  /** True once tor has uploaded the descriptor since the onion was last (re)added. */
  published: boolean;
  lastError?: { code: ErrorCode; message: string };
  /** The managed tor's pid while it runs. */
  torPid?: number;
}

export interface OnionService {
  /** "<56 base32 chars>.onion": the node's id. */
  readonly address: string;
  /** tor's SOCKS port on 127.0.0.1, for dialing peers (peerAgent). */
  readonly socksPort: number;
  state(): OnionState;
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

  /** Adds the onion with our key; an earlier detached copy (maybe with an old target port) is replaced. */
  const publish = async (control: TorControl) => {
    const detached = await control.getInfo('onions/detached').then((v) => v.split('\n'), () => [] as string[]);
    if (detached.includes(serviceId)) await control.delOnion(serviceId);
    const added = await control.addOnion({
      keyType: 'ED25519-V3',
      keyBlob: torKeyBlob(identity.seed),
      virtualPort: ONION_VIRTUAL_PORT,
      target: `127.0.0.1:${opts.targetPort}`,
      // Survives a dropped control connection; stop() removes it with DEL_ONION.
      detach: true,
    });
    if (added.serviceId !== serviceId) {
      await control.delOnion(added.serviceId).catch(() => {});
      fail('onion_mismatch', `tor published ${added.serviceId}.onion for our key, whose address is ${address}: refusing to run under another name`);
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

  let stopped: Promise<void> | undefined;
  return {
    address,
    get socksPort() {
      return socksPort;
    },
    state() {
      const pid = runtime.pid();
      return { bootstrap: { ...bootstrap }, published, ...(lastError ? { lastError: { ...lastError } } : {}), ...(pid !== undefined ? { torPid: pid } : {}) };
    },
    stop() {
      stopped ??= (async () => {
        stopping = true;
        abort.abort();
        const link = current;
        if (link) await release(link);
        if (runtime.mode === 'managed') log.info('stopping tor', { pid: runtime.pid() ?? null });
        await runtime.stop();
        await supervisor;
        published = false;
      })();
      return stopped;
    },
  };
}
