/** `p2pdb status`: what the node says about itself, and what the keyring holds (no secrets). */
import { P2pdbError } from '../errors.js';
import { readNodeStatus, statusLiveness } from '../node/status-file.js';
import { COMMON_CLIENT_HELP, NODE_OPTION, expectPositionals, flag, nodeApi, nodeDataDir, openKeyring, parse, println, type Command } from './context.js';

const USAGE = `usage: p2pdb status [--data DIR]

Shows the node's /hello/ summary (onion address, peers and their last contact), Tor's state
from the node's data dir (DATA/status.json, default ./data or $P2PDB_DATA), and the keyring
summary. Never shows key material.

options:
  --data DIR     the node's data dir, for Tor's bootstrap state
${COMMON_CLIENT_HELP}`;

function ago(ms: number, now: number): string {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  return s < 120 ? `${s} s ago` : s < 7200 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`;
}

export const statusCommand: Command = {
  name: 'status',
  summary: "the node's summary and the keyring's",
  usage: USAGE,
  async run(args, io) {
    const p = parse('status', args, { ...NODE_OPTION, data: { type: 'string' } });
    if (flag(p, 'help')) {
      println(io.stdout, USAGE);
      return 0;
    }
    expectPositionals('status', p, 0, 0, 'no arguments');
    const api = nodeApi(io, p);
    let nodeError: P2pdbError | undefined;
    println(io.stdout, `node ${api.baseUrl}`);
    try {
      const hello = await api.hello();
      println(io.stdout, `  protocol       ${hello.protocol} (${hello.software})`);
      println(io.stdout, `  tables         ${hello.tables === '*' ? 'all (*)' : `${hello.tables.length} mirrored`}`);
      if (hello.tables !== '*') for (const t of hello.tables) println(io.stdout, `                 ${t}`);
      println(io.stdout, `  proof of work  ${hello.pow_bits} bits`);
      const l = hello.limits;
      println(io.stdout, `  limits         payload ${l.max_payload_bytes} B, body ${l.max_body_bytes} B, batch ${l.max_batch_entries} entries, clock skew ${Math.round(l.max_future_skew_ms / 1000)} s`);
      println(io.stdout, `  onion          ${hello.onion ?? 'none (Tor is off)'}`);
      const peers = hello.peers ?? [];
      println(io.stdout, `  peers          ${peers.length} verified`);
      for (const peer of peers) println(io.stdout, `    ${peer.onion}  tables ${peer.tables === '*' ? '*' : peer.tables.length}  last contact ${ago(peer.last_seen, Date.now())}`);
    } catch (e) {
      if (!(e instanceof P2pdbError)) throw e;
      nodeError = e;
      // The message itself goes to stderr once, at the end (with a hint), not here as well.
      println(io.stdout, `  unavailable [${e.code}] (see the error below)`);
    }

    const tor = readNodeStatus(nodeDataDir(io, p.values.data === undefined ? undefined : String(p.values.data)));
    if (tor) {
      const b = tor.tor.bootstrap;
      const liveness = statusLiveness(tor);
      println(io.stdout, `tor (${tor.tor.mode}, as of ${ago(tor.updated_at, Date.now())})`);
      // The file outlives its node: say so, or its onion and "published" read as current.
      if (liveness === 'stopped') println(io.stdout, `  NOTE           from the status file of a node that stopped at ${new Date(tor.stopped_at!).toISOString()}: history, not now`);
      if (liveness === 'gone') println(io.stdout, `  NOTE           from the status file of a node that is not running (process ${tor.pid} is gone): history, not now`);
      println(io.stdout, `  onion          ${tor.onion}`);
      println(io.stdout, `  bootstrap      ${b ? `${b.progress}% ${b.summary}` : 'unknown'}`);
      println(io.stdout, `  onion service  ${tor.tor.published ? 'published' : 'not published yet'}`);
      const sc = tor.tor.selfCheck;
      if (sc) {
        const last = sc.lastOkAt !== undefined ? `reached itself ${ago(sc.lastOkAt, Date.now())}` : 'not reached itself yet';
        const trouble = sc.consecutiveFailures > 0 ? `; ${sc.consecutiveFailures} failed in a row (${sc.lastFailure ?? 'unknown'})` : '';
        const healed = sc.republishes + sc.torRestarts > 0 ? `; healed by ${sc.republishes} re-publish(es), ${sc.torRestarts} tor restart(s)` : '';
        println(io.stdout, `  self-check     ${last}${trouble}${healed}`);
      }
      if (tor.tor.clients !== undefined) {
        println(io.stdout, `  access         ${tor.tor.clients > 0 ? `private: ${tor.tor.clients} authorized client key${tor.tor.clients === 1 ? '' : 's'} (p2pdb clients list)` : 'public (anyone with the address)'}`);
      }
      if (tor.tor.lastError) println(io.stdout, `  last error     ${tor.tor.lastError}`);
    }

    const keyring = await openKeyring(io);
    const keys = keyring.list();
    println(io.stdout, `keyring ${keyring.file}${keyring.exists ? '' : ' (not created yet: run p2pdb init)'}`);
    if (keyring.exists) {
      const kdf = keyring.kdfParams;
      println(io.stdout, `  passphrase     ${kdf ? `set (scrypt N=${kdf.N} r=${kdf.r} p=${kdf.p})` : 'not set yet'}`);
      println(io.stdout, `  keys           ${keys.length} (${keys.filter((k) => k.hasPrivate).length} with private key)`);
      const width = Math.max(0, ...keys.map((k) => k.name.length));
      for (const k of keys) println(io.stdout, `    ${k.name.padEnd(width)}  ${k.fingerprint.slice(0, 16)}  ${k.hasPrivate ? 'private' : 'public'}`);
    }
    // Reported by main like any other error: once, with its hint; exit code 1.
    if (nodeError) throw nodeError;
    return 0;
  },
};
