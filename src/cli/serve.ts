/** `p2pdb serve`: run a node until SIGINT or SIGTERM. */
import { createServer } from 'node:net';
import { loadConfig, type ConfigInput } from '../config/config.js';
import { P2pdbError } from '../errors.js';
import { createEntryLogger, createLogger, type Logger } from '../util/log.js';
import { chooseLogFormat, newPlainState, plainLines } from '../util/operator-output.js';
import { expectPositionals, flag, parse, println, str, type Command } from './context.js';

const USAGE = `usage: p2pdb serve [--data DIR] [--port N] [--host H] [--pow-bits N]
                   [--tor off|managed|attach] [--tor-control ADDR] [--tor-socks ADDR] [--tor-binary PATH]
                   [--allowed-tables fp,fp|*] [--peers ONION,ONION] [--config FILE]
                   [--onion-pow on|off] [--onion-pow-queue-rate N] [--onion-pow-queue-burst N]
                   [--onion-max-streams N] [--log-format plain|json]

Runs a node in the foreground; Ctrl-C (SIGINT) or SIGTERM stops it cleanly.
Settings: defaults < config file (DIR/config.json or --config) < P2PDB_* environment < flags.

options:
  --data DIR              data directory (default ./data)
  --port N                port, 0 for any free port (default 8733)
  --host H                loopback address to listen on (default 127.0.0.1)
  --tor MODE              off (default): loopback only, no peers; managed: run our own tor
                          (DIR/tor) and publish the node as an onion service; attach: publish it
                          through a tor you run (needs --tor-control)
  --tor-control ADDR      attach: tor's control port, 127.0.0.1:PORT or unix:/path (cookie auth,
                          or the password in $P2PDB_TOR_CONTROL_PASSWORD)
  --peers ONION,ONION     bootstrap peers (v3 onion addresses) to say hello to
  --tor-socks ADDR        tor's SOCKS port, 127.0.0.1:PORT (managed: default a free port;
                          attach: default asked from tor)
  --tor-binary PATH       managed: the tor executable (default tor)
  --pow-bits N            proof of work entries must carry (default 21)
  --onion-pow on|off      Tor's proof-of-work defence for the onion service: under a flood of
                          introductions, clients must solve a puzzle (default on, needs tor >= 0.4.9.2)
  --onion-pow-queue-rate N   introductions per second taken from the PoW queue (default 250)
  --onion-pow-queue-burst N  and at most this many at once (default 2500)
  --onion-max-streams N   streams one circuit may have open; past it tor closes the circuit
                          (default 64, 0: no limit)
  --allowed-tables LIST   '*' (every table) or table fingerprints separated by commas
  --database URL          postgres://USER@HOST/DB for a large node, or a SQLite file
                          (default: DIR/p2pdb.sqlite; also $P2PDB_DATABASE, "database" in the config file)
  --config FILE           read settings from FILE instead of DIR/config.json
  --log-format F          plain: short lines for a person (the default on a terminal);
                          json: one JSON object per line (the default otherwise); also $P2PDB_LOG_FORMAT
  -h, --help              show this help`;

/** Which database the node uses, never with a password in it (the banner may be pasted anywhere). */
function databaseLabel(config: { database?: string }): string {
  if (config.database === undefined) return 'SQLite';
  if (/^postgres(ql)?:/i.test(config.database)) {
    try {
      const u = new URL(config.database);
      return `PostgreSQL ${u.hostname}${u.port ? ':' + u.port : ''}${u.pathname}`;
    } catch {
      return 'PostgreSQL';
    }
  }
  return `SQLite ${config.database}`;
}

/**
 * Fails like startNode does on a port in use, but before startNode creates the data dir and
 * its files. (Another process could still take the port in the instant between; then
 * startNode reports it as before.)
 */
async function assertPortFree(host: string, port: number): Promise<void> {
  if (port === 0) return;
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'EADDRINUSE' ? new P2pdbError('config_invalid', `${host}:${port} is already in use (another node?): choose another port with --port or P2PDB_PORT`) : err);
    });
    probe.listen({ port, host, exclusive: true }, () => probe.close(() => resolve()));
  });
}

export const serveCommand: Command = {
  name: 'serve',
  summary: 'run a node',
  usage: USAGE,
  async run(args, io) {
    const p = parse('serve', args, {
      data: { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      tor: { type: 'string' },
      'tor-control': { type: 'string' },
      'tor-socks': { type: 'string' },
      'tor-binary': { type: 'string' },
      'pow-bits': { type: 'string' },
      'allowed-tables': { type: 'string' },
      peers: { type: 'string' },
      database: { type: 'string' },
      config: { type: 'string' },
      'onion-pow': { type: 'string' },
      'onion-pow-queue-rate': { type: 'string' },
      'onion-pow-queue-burst': { type: 'string' },
      'onion-max-streams': { type: 'string' },
      'log-format': { type: 'string' },
    });
    if (flag(p, 'help')) {
      println(io.stdout, USAGE);
      return 0;
    }
    expectPositionals('serve', p, 0, 0, 'no positional arguments');
    const flags: ConfigInput = {};
    const set = (key: keyof ConfigInput, name: string) => {
      const v = str(p, name);
      if (v !== undefined) flags[key] = v;
    };
    set('dataDir', 'data');
    set('port', 'port');
    set('host', 'host');
    set('tor', 'tor');
    set('torControl', 'tor-control');
    set('torSocks', 'tor-socks');
    set('torBinary', 'tor-binary');
    set('powBits', 'pow-bits');
    set('allowedTables', 'allowed-tables');
    set('peers', 'peers');
    set('database', 'database');
    set('onionPow', 'onion-pow');
    set('onionPowQueueRate', 'onion-pow-queue-rate');
    set('onionPowQueueBurst', 'onion-pow-queue-burst');
    set('onionMaxStreams', 'onion-max-streams');
    const file = str(p, 'config');
    // Chosen before anything starts: a typo in --log-format is an error, not a silent default.
    const format = chooseLogFormat(str(p, 'log-format'), io.env.P2PDB_LOG_FORMAT, io.stderr.isTTY === true);
    const config = loadConfig({ flags, env: io.env, ...(file !== undefined ? { file } : {}) });

    // Before anything is created: a node that cannot listen must not leave a data dir behind.
    await assertPortFree(config.host, config.port);
    let log: Logger;
    if (format === 'json') log = createLogger((line) => io.stderr.write(line + '\n'));
    else {
      const view = newPlainState();
      log = createEntryLogger((entry) => {
        for (const line of plainLines(entry, view)) io.stderr.write(line + '\n');
      });
    }
    // Listen for stop requests before starting, so a signal during startup is not lost.
    const stop = io.stopSignal();
    // Loaded here, not at the top: client commands should not pay for the store and its native module.
    const { startNode } = await import('../node/node.js');
    const node = await startNode(config, { log });
    // One write, so a reader that has seen the URL has seen the rest of the banner too.
    const banner = [
      `p2pdb node listening on ${node.url}`,
      `  data ${config.dataDir}, ${databaseLabel(config)}, proof of work ${config.powBits} bits, tables ${config.allowedTables === '*' ? '*' : config.allowedTables.length}`,
      ...(config.tor === 'off' ? ['  Tor is off: the node is reachable on loopback only, not by peers.'] : []),
      ...(node.onion
        ? [
            `  onion address ${node.onion.address} (Tor ${config.tor}, SOCKS 127.0.0.1:${node.onion.socksPort})`,
            `  peers reach it at http://${node.onion.address}/ once Tor has bootstrapped and published it (progress on stderr)`,
          ]
        : []),
    ];
    println(io.stdout, banner.join('\n'));
    const signal = await stop;
    // Say what a stop waits for: with Tor on it removes the onion service and waits for tor to exit.
    const steps = ['ending live streams and syncs', ...(node.onion ? [config.tor === 'managed' ? 'removing the onion service and stopping tor' : 'removing the onion service from your tor'] : []), 'closing the store'];
    println(io.stdout, `${signal}: stopping (${steps.join(', ')})`);
    const began = Date.now();
    const seconds = () => ((Date.now() - began) / 1000).toFixed(1);
    // A stop should take well under a second; if it does not, show that it is still going.
    const ticker = setInterval(() => println(io.stdout, `still stopping after ${seconds()} s (details on stderr)`), 2_000);
    ticker.unref();
    try {
      await node.close();
    } finally {
      clearInterval(ticker);
    }
    println(io.stdout, `stopped in ${seconds()} s`);
    return 0;
  },
};
