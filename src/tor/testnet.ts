/**
 * A private Tor network on 127.0.0.1 made of real `tor` processes, for tests: directory
 * authorities, relays that host no onions, and one "client tor" per app node (it publishes the
 * node's onion through its ControlPort and dials peers through its SocksPort).
 *
 * One network can serve many test processes: describe() gives a JSON-able description and
 * attachTestnet() starts client tors against a network another process runs.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fail } from '../errors.js';
import { makeAuthorityKeys } from './authority-keys.js';
import type { TorControl } from './control.js';
import { freePorts, isPortClash, retryOnPortClash } from './ports.js';
import { spawnTor, waitForControl, type TorProcess } from './process.js';
import { assertLoopbackTorrc, renderTorrc, type TorrcValues } from './torrc.js';
import { waitFor } from './wait.js';

export interface TestnetOptions {
  /** Where every data dir, torrc and log goes; a fresh temp dir (removed on stop) by default. */
  dir?: string;
  /** Relays that host no onion; at least 4 are needed, 5 is more robust. Default 5. */
  relays?: number;
  /** Directory authorities (they count as relays too). Default 1. */
  authorities?: number;
  /** Receives every line the tors print, prefixed with the tor's name. */
  log?: (line: string) => void;
  /** Deadline for the network to be usable. Default 180 s. */
  timeoutMs?: number;
}

export interface TestnetRouter {
  nickname: string;
  orPort: number;
  controlPort: number;
  dataDir: string;
  /** Authorities only. */
  dirPort?: number;
  fingerprint?: string;
  v3ident?: string;
}

/** What another process needs to join the network (written as JSON by scripts/testnet-up.ts). */
export interface TestnetDescription {
  version: 1;
  dir: string;
  /** pid of the process that runs the network (its tors exit when it does). */
  ownerPid: number;
  /** Values of the DirAuthority lines. */
  dirAuthorities: string[];
  authorities: TestnetRouter[];
  relays: TestnetRouter[];
}

export interface ClientTor {
  name: string;
  socksPort: number;
  controlPort: number;
  dataDir: string;
  cookiePath: string;
  torrcPath: string;
  pid: number;
  stop(): Promise<void>;
}

export interface ClientTorrcValues {
  dataDir: string;
  nickname: string;
  socksPort: number;
  controlPort: number;
  ownerPid?: number;
  /** Extra torrc lines; {{DATA_DIR}} and the other placeholders work in them too. */
  extraLines?: string[];
}

export interface Testnet {
  dir: string;
  authorities: TestnetRouter[];
  relays: TestnetRouter[];
  describe(): TestnetDescription;
  /** The lines that make any tor join this network (append them to a node's own torrc). */
  networkTorrcLines(): string[];
  /** A complete torrc for a client tor of this network. */
  torrcFor(values: ClientTorrcValues): string;
  /**
   * Starts a client tor and resolves once it has bootstrapped to 100% (or, with
   * bootstrap: false, as soon as its control port accepts us).
   */
  startClientTor(name: string, opts?: { timeoutMs?: number; bootstrap?: boolean; extraLines?: string[] }): Promise<ClientTor>;
  /** Stops every tor this object started (an attached network keeps running). */
  stop(): Promise<void>;
}

export async function startTestnet(opts: TestnetOptions = {}): Promise<Testnet> {
  const relayCount = opts.relays ?? 5;
  const authorityCount = opts.authorities ?? 1;
  // Path selection excludes the onion host and intro/rendezvous points: fewer relays and onion circuits fail.
  if (relayCount < 4 || authorityCount < 1) fail('config_invalid', 'a private network needs at least 1 authority and 4 relays');
  const ownDir = opts.dir === undefined;
  const dir = opts.dir ?? (await mkdtemp(path.join(tmpdir(), 'p2pdb-testnet-')));
  const templates = await loadTemplates();
  const clients = new Set<ClientTor>();
  const removeDir = async () => {
    if (ownDir && !process.env.P2PDB_KEEP_TMP) await rm(dir, { recursive: true, force: true });
  };
  try {
    // A port taken between probe and bind fails the start; the authority's certificate names its
    // DirPort, so the whole network is set up again on fresh ports and fresh data dirs.
    const { description, stopRouters } = await retryOnPortClash((attempt) =>
      startRouters({ dir, templates, relayCount, authorityCount, attempt, opts }),
    );
    const net = clientSide(description, templates, path.join(dir, 'clients'), opts.log, clients);
    const stop = async () => {
      await Promise.all([...clients].map((c) => c.stop()));
      await stopRouters();
      await removeDir();
    };
    return { ...net, stop };
  } catch (err) {
    await removeDir();
    throw err;
  }
}

interface RouterStart {
  dir: string;
  templates: Templates;
  relayCount: number;
  authorityCount: number;
  attempt: number;
  opts: TestnetOptions;
}

/** Starts authorities then relays and waits for a consensus listing all of them; on failure stops them all. */
async function startRouters(s: RouterStart): Promise<{ description: TestnetDescription; stopRouters: () => Promise<void> }> {
  const { dir, templates, opts } = s;
  const processes: TorProcess[] = [];
  const stopRouters = async () => {
    await Promise.all(processes.map((p) => p.stop()));
  };
  // Later attempts get their own data dirs: a half-started tor's state must not leak into them.
  const routersDir = s.attempt === 1 ? dir : path.join(dir, `attempt${s.attempt}`);
  try {
    const authorities: TestnetRouter[] = [];
    const ports = await freePorts(s.authorityCount * 3 + s.relayCount * 2);
    for (let i = 0; i < s.authorityCount; i++) {
      const [orPort, dirPort, controlPort] = ports.splice(0, 3) as [number, number, number];
      const dataDir = await makeDataDir(routersDir, `auth${i}`);
      authorities.push({ nickname: `auth${i}`, orPort, dirPort, controlPort, dataDir, ...(await makeAuthorityKeys(dataDir, dirPort, orPort)) });
    }
    const relays: TestnetRouter[] = [];
    for (let i = 0; i < s.relayCount; i++) {
      const [orPort, controlPort] = ports.splice(0, 2) as [number, number];
      relays.push({ nickname: `relay${i}`, orPort, controlPort, dataDir: await makeDataDir(routersDir, `relay${i}`) });
    }
    const description: TestnetDescription = {
      version: 1,
      dir,
      ownerPid: process.pid,
      dirAuthorities: authorities.map((a) => `${a.nickname} orport=${a.orPort} v3ident=${a.v3ident} 127.0.0.1:${a.dirPort} ${a.fingerprint}`),
      authorities,
      relays,
    };
    const routers = [...authorities.map((r) => ({ r, role: 'authority' as const })), ...relays.map((r) => ({ r, role: 'relay' as const }))];
    const launch = async ({ r, role }: (typeof routers)[number]) => {
      const torrc = templates.render([templates.node, templates.network, templates[role]], {
        DATA_DIR: r.dataDir,
        NICKNAME: r.nickname,
        CONTROL_PORT: r.controlPort,
        OWNER_PID: process.pid,
        DIR_AUTHORITY: description.dirAuthorities,
        OR_PORT: r.orPort,
        DIR_PORT: r.dirPort ?? 0,
      });
      const proc = spawnTor({ name: r.nickname, torrcPath: await writeTorrc(r.dataDir, torrc), dir: r.dataDir, ...(opts.log ? { log: opts.log } : {}) });
      processes.push(proc);
      return waitForControl(proc, r.controlPort);
    };
    const deadline = Date.now() + (opts.timeoutMs ?? 180_000);
    const controls: TorControl[] = [];
    try {
      // Relays start once a consensus exists: started earlier, their fetches get 404s and tor's
      // exponential download backoff then left some idle for 30-60 s (measured).
      controls.push(...(await settleAll(routers.filter((x) => x.role === 'authority').map(launch))));
      await waitForFirstConsensus(controls[0]!, processes, deadline - Date.now());
      controls.push(...(await settleAll(routers.filter((x) => x.role === 'relay').map(launch))));
      await waitForConsensus(controls, routers.map(({ r }) => r.nickname), processes, deadline - Date.now());
    } finally {
      for (const c of controls) c.close();
    }
    return { description, stopRouters };
  } catch (err) {
    await stopRouters();
    throw err;
  }
}

/**
 * Like Promise.all, but waits for every launch to settle (so none is left half-started behind a
 * failure) and closes the controls that did open. A port clash wins over other errors, so it is
 * retried.
 */
async function settleAll(launches: Promise<TorControl>[]): Promise<TorControl[]> {
  const settled = await Promise.allSettled(launches);
  const failures = settled.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  if (failures.length === 0) return settled.map((r) => (r as PromiseFulfilledResult<TorControl>).value);
  for (const r of settled) if (r.status === 'fulfilled') r.value.close();
  throw failures.find(isPortClash) ?? failures[0];
}

/** Joins a network another process runs; stop() stops only the client tors started here. */
export async function attachTestnet(description: TestnetDescription, opts: { dir?: string; log?: (line: string) => void } = {}): Promise<Testnet> {
  if (description.version !== 1) fail('config_invalid', `unknown testnet description version ${String(description.version)}`);
  try {
    process.kill(description.ownerPid, 0);
  } catch {
    fail('tor_process', `the shared test network's process ${description.ownerPid} is gone`);
  }
  const ownDir = opts.dir === undefined;
  const dir = opts.dir ?? (await mkdtemp(path.join(tmpdir(), 'p2pdb-testnet-clients-')));
  const clients = new Set<ClientTor>();
  const net = clientSide(description, await loadTemplates(), dir, opts.log, clients);
  return {
    ...net,
    async stop() {
      await Promise.all([...clients].map((c) => c.stop()));
      if (ownDir && !process.env.P2PDB_KEEP_TMP) await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function readTestnetDescription(file: string): Promise<TestnetDescription> {
  return JSON.parse(await readFile(file, 'utf8')) as TestnetDescription;
}

/** Written atomically: a reader never sees half a file. */
export async function writeTestnetDescription(file: string, description: TestnetDescription): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(description, null, 2) + '\n');
  await rename(tmp, file);
}

function clientSide(
  description: TestnetDescription,
  templates: Templates,
  clientsDir: string,
  log: ((line: string) => void) | undefined,
  clients: Set<ClientTor>,
): Omit<Testnet, 'stop'> {
  const torrcFor = (v: ClientTorrcValues) =>
    templates.render([templates.node, templates.network, templates.client, ...(v.extraLines ?? [])], {
      DATA_DIR: v.dataDir,
      NICKNAME: v.nickname,
      CONTROL_PORT: v.controlPort,
      SOCKS_PORT: v.socksPort,
      OWNER_PID: v.ownerPid ?? process.pid,
      DIR_AUTHORITY: description.dirAuthorities,
    });
  return {
    dir: description.dir,
    authorities: description.authorities,
    relays: description.relays,
    describe: () => description,
    networkTorrcLines: () =>
      templates
        .render([templates.network], { DIR_AUTHORITY: description.dirAuthorities })
        .split('\n')
        .filter((l) => l.trim() !== '' && !l.startsWith('#')),
    torrcFor,
    async startClientTor(name, opts = {}) {
      if (!/^[A-Za-z0-9]{1,19}$/.test(name)) fail('config_invalid', `client tor name must be 1-19 letters or digits: ${name}`);
      const dataDir = path.join(clientsDir, name);
      if (existsSync(dataDir)) fail('config_invalid', `a client tor named ${name} was already started here`);
      await makeDataDir(clientsDir, name);
      // A port taken between probe and bind: the same data dir, fresh ports.
      return retryOnPortClash(async () => {
        const [socksPort, controlPort] = (await freePorts(2)) as [number, number];
        const torrcPath = await writeTorrc(dataDir, torrcFor({ dataDir, nickname: name, socksPort, controlPort, ...(opts.extraLines ? { extraLines: opts.extraLines } : {}) }));
        const proc = spawnTor({ name, torrcPath, dir: dataDir, ...(log ? { log } : {}) });
        const client: ClientTor = {
          name,
          socksPort,
          controlPort,
          dataDir,
          cookiePath: path.join(dataDir, 'control_auth_cookie'),
          torrcPath,
          pid: proc.pid,
          stop: async () => {
            clients.delete(client);
            await proc.stop();
          },
        };
        clients.add(client);
        try {
          const control = await waitForControl(proc, controlPort);
          try {
            if (opts.bootstrap !== false) await control.waitForBootstrap(undefined, opts.timeoutMs ?? 120_000);
          } finally {
            control.close();
          }
        } catch (err) {
          await client.stop();
          throw err;
        }
        return client;
      });
    },
  };
}

/** Resolves once the authority serves a consensus (even one listing no relay yet). */
async function waitForFirstConsensus(control: TorControl, processes: TorProcess[], timeoutMs: number): Promise<void> {
  await waitFor(
    async (note) => {
      const dead = processes.find((p) => !p.isRunning());
      if (dead) fail('tor_process', `tor ${dead.name} exited while the network started:\n${dead.logTail()}`);
      const served = await control.getInfo('dir/status-vote/current/consensus-microdesc').catch((err: Error) => (note(err.message), ''));
      return served.includes('network-status-version 3');
    },
    { timeoutMs, intervalMs: 250, what: 'waiting for the first consensus' },
  );
}

/**
 * The network is usable once the first authority's consensus lists every router as a running,
 * valid guard and HSDir (onion services need HSDirs, clients need guards) and every router has
 * bootstrapped: routers are the directory caches clients fetch descriptors from, and a client
 * started earlier waits at "loading relay descriptors" until they have them.
 */
async function waitForConsensus(controls: TorControl[], nicknames: string[], processes: TorProcess[], timeoutMs: number): Promise<void> {
  await waitFor(
    async (note) => {
      const dead = processes.find((p) => !p.isRunning());
      if (dead) fail('tor_process', `tor ${dead.name} exited while the network started:\n${dead.logTail()}`);
      const phases = await Promise.all(controls.map((c) => c.getBootstrapPhase().then((p) => p.progress)));
      const behind = phases.map((p, i) => (p < 100 ? `${nicknames[i]} at ${p}%` : '')).filter(Boolean);
      if (behind.length > 0) {
        note(`routers still bootstrapping: ${behind.join(', ')}`);
        return false;
      }
      let consensus: string;
      try {
        consensus = await controls[0]!.getInfo('ns/all');
      } catch (err) {
        note(`no consensus yet: ${(err as Error).message}`);
        return false;
      }
      const ready = new Set<string>();
      let current = '';
      for (const line of consensus.split('\n')) {
        if (line.startsWith('r ')) current = line.split(' ')[1] ?? '';
        if (line.startsWith('s ') && ['Running', 'Valid', 'Guard', 'HSDir'].every((f) => line.split(' ').includes(f))) ready.add(current);
      }
      const missing = nicknames.filter((n) => !ready.has(n));
      note(`consensus lacks ${missing.join(', ') || 'nothing'}`);
      return missing.length === 0;
    },
    { timeoutMs, intervalMs: 500, what: 'waiting for a consensus listing every relay' },
  );
}

interface Templates {
  node: string;
  network: string;
  authority: string;
  relay: string;
  client: string;
  /** Joins the parts, fills placeholders and refuses any non-loopback listener. */
  render(parts: string[], values: TorrcValues): string;
}

async function loadTemplates(): Promise<Templates> {
  const dir = templateDir();
  const read = (name: string) => readFile(path.join(dir, `${name}.torrc.template`), 'utf8');
  const [node, network, authority, relay, client] = await Promise.all(['node', 'network', 'authority', 'relay', 'client'].map(read));
  return {
    node: node!,
    network: network!,
    authority: authority!,
    relay: relay!,
    client: client!,
    render(parts, values) {
      const torrc = renderTorrc(parts.join('\n'), values);
      assertLoopbackTorrc(torrc);
      return torrc;
    },
  };
}

/** tor/testnet in the repository, found from this module whether it runs from src/ or dist/src/. */
function templateDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = path.join(dir, 'tor', 'testnet');
    if (existsSync(path.join(candidate, 'network.torrc.template'))) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) fail('internal', 'tor/testnet templates not found above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
}

async function makeDataDir(parent: string, name: string): Promise<string> {
  const dataDir = path.join(parent, name);
  // tor refuses a DataDirectory others can read.
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  return dataDir;
}

async function writeTorrc(dataDir: string, torrc: string): Promise<string> {
  const file = path.join(dataDir, 'torrc');
  await writeFile(file, torrc + '\n');
  return file;
}
