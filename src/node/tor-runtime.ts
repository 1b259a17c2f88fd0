/**
 * How the node gets an authenticated control connection and a SOCKS port: either by running its
 * own tor (managed: torrc.template rendered into DATA/tor/torrc, restarted when it dies) or from
 * a tor someone else runs (attach). The onion service (onion-service.ts) only sees TorRuntime.
 */
import { constants } from 'node:fs';
import { access, chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loopbackPort, parseTorControl, type NodeConfig } from '../config/config.js';
import { fail } from '../errors.js';
import { TorControl } from '../tor/control.js';
import { freePorts, retryOnPortClash } from '../tor/ports.js';
import { spawnTor, waitForControl, type TorProcess } from '../tor/process.js';
import { assertLoopbackTorrc, renderTorrcFile } from '../tor/torrc.js';
import type { Logger } from '../util/log.js';
import { RepeatSummariser, type RepeatSummary } from '../util/operator-output.js';

export interface TorLink {
  control: TorControl;
  socksPort: number;
}

export interface TorRuntime {
  readonly mode: 'managed' | 'attach';
  /** A fresh authenticated control connection; managed mode (re)starts tor when it is not running. */
  connect(): Promise<TorLink>;
  /** The managed tor's pid while it runs. */
  pid(): number | undefined;
  /** Managed: stops tor. Attach: nothing (the tor is not ours). */
  stop(): Promise<void>;
  /**
   * Managed: stops the running tor so the next connect() starts a fresh one (the control
   * connection closes and the onion service reconnects). Attach: false (not ours to restart).
   */
  restart(): Promise<boolean>;
}

/** dist/src/node → the repository root, where torrc.template lives. */
export const TORRC_TEMPLATE = fileURLToPath(new URL('../../../torrc.template', import.meta.url));

export interface ManagedTorOptions {
  dataDir: string;
  torBinary: string;
  extraLines: string[];
  /** Fixed SOCKS port; else a free one (kept across restarts so peers' agents stay valid). */
  socksPort?: number;
  log: Logger;
  templatePath?: string;
}

export function managedTor(opts: ManagedTorOptions): TorRuntime {
  const torDir = path.join(opts.dataDir, 'tor');
  const torrcPath = path.join(torDir, 'torrc');
  let proc: TorProcess | undefined;
  let ports: { socks: number; control: number } | undefined;
  let startFailed = false;
  let stopped = false;
  const torLines = torLogLine(opts.log);
  // Reports repeats whose minute is up even when tor has gone quiet meanwhile.
  const flusher = setInterval(() => torLines.flush(), 15_000);
  flusher.unref();

  // A port taken between probe and tor's bind sets startFailed, so the next attempt probes afresh.
  const start = (): Promise<TorLink> => retryOnPortClash(startOnce);

  const startOnce = async (): Promise<TorLink> => {
    await privateDir(torDir);
    // A restart reuses the ports (the SOCKS port others were given stays valid); after a failed
    // start one of them may have been taken meanwhile, so fresh ones are picked.
    if (!ports || startFailed) {
      const [socks, control] = (await freePorts(2)) as [number, number];
      ports = { socks: opts.socksPort ?? socks, control };
    }
    const torrc = [
      // DATA_DIR is the node's data dir: the template puts tor's DataDirectory at DATA/tor.
      await renderTorrcFile(opts.templatePath ?? TORRC_TEMPLATE, { DATA_DIR: opts.dataDir, SOCKS_PORT: ports.socks, CONTROL_PORT: ports.control }),
      '## Added by p2pdb: tor exits by itself if the node is gone, even after SIGKILL.',
      `__OwningControllerProcess ${process.pid}`,
      ...(opts.extraLines.length > 0 ? ['## torExtraLines from the node config', ...opts.extraLines] : []),
      '',
    ].join('\n');
    assertLoopbackTorrc(torrc);
    await writeFile(torrcPath, torrc, { mode: 0o600 });
    await chmod(torrcPath, 0o600);
    startFailed = true;
    if (stopped) fail('tor_process', 'the node is stopping');
    // spawnTor cannot report a missing binary as an error (Node emits it later, unhandled).
    await assertExecutable(opts.torBinary);
    proc = spawnTor({ name: 'tor', torrcPath, dir: torDir, torBinary: opts.torBinary, log: torLines.onLine });
    const control = await waitForControl(proc, ports.control);
    startFailed = false;
    return { control, socksPort: ports.socks };
  };

  return {
    mode: 'managed',
    async connect() {
      if (stopped) fail('tor_process', 'the node is stopping');
      if (proc?.isRunning() && ports) {
        // Only the control connection dropped: the same tor keeps its circuits and cache.
        try {
          return { control: await TorControl.connect({ port: ports.control, timeoutMs: 5_000 }), socksPort: ports.socks };
        } catch {
          await proc.stop();
        }
      }
      return start();
    },
    pid: () => (proc?.isRunning() ? proc.pid : undefined),
    async restart() {
      if (stopped || !proc?.isRunning()) return false;
      await proc.stop();
      return true;
    },
    async stop() {
      stopped = true;
      clearInterval(flusher);
      await proc?.stop();
      torLines.flush(true);
    },
  };
}

export interface AttachedTorOptions {
  control: string;
  password?: string;
  /** "127.0.0.1:PORT"; else asked from tor (GETINFO net/listeners/socks). */
  socks?: string;
}

export function attachedTor(opts: AttachedTorOptions): TorRuntime {
  const endpoint = parseTorControl(opts.control);
  return {
    mode: 'attach',
    async connect() {
      const control = await TorControl.connect({ ...endpoint, ...(opts.password !== undefined ? { password: opts.password } : {}) });
      try {
        const socksPort = opts.socks !== undefined ? loopbackPort(opts.socks, 'torSocks') : await discoverSocksPort(control);
        return { control, socksPort };
      } catch (err) {
        control.close();
        throw err;
      }
    },
    pid: () => undefined,
    async stop() {},
    restart: async () => false,
  };
}

export function torRuntimeFromConfig(config: NodeConfig, log: Logger): TorRuntime {
  if (config.tor === 'attach') {
    return attachedTor({
      control: config.torControl ?? fail('config_invalid', 'tor "attach" needs torControl'),
      ...(config.torControlPassword !== undefined ? { password: config.torControlPassword } : {}),
      ...(config.torSocks !== undefined ? { socks: config.torSocks } : {}),
    });
  }
  if (config.tor !== 'managed') fail('config_invalid', `no tor runtime for tor "${config.tor}"`);
  return managedTor({
    dataDir: config.dataDir,
    torBinary: config.torBinary,
    extraLines: config.torExtraLines,
    ...(config.torSocks !== undefined ? { socksPort: loopbackPort(config.torSocks, 'torSocks') } : {}),
    log,
  });
}

/** The first SocksPort tor listens on at 127.0.0.1 (a unix-socket SocksPort is not usable by peerAgent). */
async function discoverSocksPort(control: TorControl): Promise<number> {
  const listeners = (await control.getInfo('net/listeners/socks')).split(' ').map((s) => s.replace(/^"|"$/g, ''));
  const port = listeners.map((l) => /^127\.0\.0\.1:(\d+)$/.exec(l)?.[1]).find((p) => p !== undefined);
  if (port === undefined) {
    fail('config_invalid', `tor has no SocksPort on 127.0.0.1 (it listens on ${listeners.join(', ') || 'nothing'}); set torSocks`);
  }
  return Number(port);
}

/**
 * Tor's own warnings matter to operators (no network, clock skew); the rest is debug noise.
 * Without a network tor repeats the same warning dozens of times a minute (34 in 90 s, with
 * only the counts and ports changing): the first of a kind is forwarded, its repeats are
 * counted and reported as one line when its minute is up (on the next tor line, by the
 * periodic flush, or at stop).
 */
export function torLogLine(log: Logger, windowMs = 60_000): { onLine: (line: string) => void; flush: (all?: boolean) => void } {
  const summariser = new RepeatSummariser(windowMs);
  const report = (summaries: RepeatSummary[]) => {
    for (const s of summaries) log.warn('tor repeated a warning', { line: s.line, repeats: s.repeats, within_s: Math.round(s.withinMs / 1000) });
  };
  return {
    onLine(line) {
      if (!/\[(warn|err)\]/.test(line)) {
        log.debug('tor says', { line });
        return;
      }
      const { forward, summaries } = summariser.push(line, Date.now());
      report(summaries);
      if (forward !== undefined) log.warn('tor says', { line: forward });
      else log.debug('tor says', { line, repeat: true });
    },
    flush(all = false) {
      report(summariser.flush(Date.now(), all));
    },
  };
}

/** A path, or a name looked up on PATH the way spawn does. */
async function assertExecutable(bin: string): Promise<void> {
  const candidates = bin.includes('/') ? [bin] : (process.env.PATH ?? '').split(path.delimiter).filter((d) => d !== '').map((d) => path.join(d, bin));
  for (const candidate of candidates) {
    if (await access(candidate, constants.X_OK).then(() => true, () => false)) return;
  }
  fail('tor_process', `cannot run tor: ${JSON.stringify(bin)} is not an executable${bin.includes('/') ? '' : ' on PATH'} (install Debian's tor package or set torBinary)`);
}

async function privateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // tor refuses a DataDirectory others can read; tighten one created with a looser umask.
  await chmod(dir, 0o700);
}
