/**
 * Sync over the private Tor network: real nodes (startNode with their own managed tor, onion
 * services, every peer request through tor's SOCKS port). Nodes that wrote while partitioned
 * converge once they meet (scheduler + fresh-entry pushes); a node mirroring a whitelist gets
 * only its tables; a malicious onion peer gets none of its forged entries stored and is
 * penalised, then banned; a bootstrap killed midway (SIGKILL of the node's process) resumes
 * from its saved cursor after a restart, without loss or duplicates; `p2pdb sync` drives a
 * running node through its local control listener.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { resolveConfig, type ConfigInput } from '../src/config/config.js';
import { parsePublicKey } from '../src/crypto/keys.js';
import type { P2pdbError } from '../src/errors.js';
import { startNode, type RunningNode } from '../src/node/node.js';
import type { SyncOutcome } from '../src/sync/service.js';
import { waitFor } from '../src/tor/wait.js';
import { createLogger, silentLogger } from '../src/util/log.js';
import { CLI_MAIN, runScript } from './helpers/cli.js';
import { testKey, type MadeEntry } from './helpers/entries.js';
import { startMaliciousPeer, type MaliciousPeer } from './helpers/malicious-peer.js';
import { allIds, makeEntries, putAll } from './helpers/sync.js';
import { nodeDatabaseSetting, onBackend } from './helpers/backend.js';
import { useTestnet } from './helpers/testnet.js';
import { tempDir } from './helpers/tmp.js';

const testnet = useTestnet();
const nodes: RunningNode[] = [];
const closers: (() => Promise<void>)[] = [];
const tableX = testKey();
const tableY = testKey();
const alice = testKey();
const X = parsePublicKey(tableX.publicPem).fingerprint.toString('hex');
const Y = parsePublicKey(tableY.publicPem).fingerprint.toString('hex');
const log = process.env.P2PDB_TEST_LOG ? createLogger() : silentLogger;

async function torConfig(extra: ConfigInput): Promise<ConfigInput> {
  const database = await nodeDatabaseSetting();
  return testnet.then((net) => ({
    dataDir: tempDir('p2pdb-sync-'),
    ...(database ? { database } : {}),
    port: 0,
    powBits: 12,
    tor: 'managed',
    torExtraLines: net.networkTorrcLines(),
    peeringIntervalMs: 1000,
    syncIntervalMs: 60_000,
    ...extra,
  }));
}

async function startOnionNode(extra: ConfigInput = {}): Promise<RunningNode> {
  const node = await startNode(resolveConfig(await torConfig(extra)), { log });
  nodes.push(node);
  await waitFor(() => node.onion!.state().published, { timeoutMs: 90_000, what: 'onion published' });
  return node;
}

/** Every entry written to A, B or C so far. */
const written: MadeEntry[] = [];
let a: RunningNode;
let b: RunningNode;
let c: RunningNode;

before(async () => {
  await testnet;
});
after(async () => {
  for (const close of closers) await close().catch(() => {});
  await Promise.all(nodes.map((n) => n.close()));
});

/** Waits until every node holds exactly `expected` (sorted hex ids). */
async function converged(expected: Map<RunningNode, string[]>, what: string): Promise<void> {
  await waitFor(
    async (note) => {
      for (const [node, ids] of expected) {
        const have = await allIds(node.store);
        if (have.length !== ids.length || have.some((id, i) => id !== ids[i])) {
          note(`${node.onion!.address.slice(0, 8)} has ${have.length} of ${ids.length}`);
          return false;
        }
      }
      return true;
    },
    { timeoutMs: 120_000, what },
  );
}

test(onBackend('two nodes that wrote while partitioned converge once they meet'), async () => {
  [a, b] = await Promise.all([startOnionNode(), startOnionNode()]);
  const fromA = await makeEntries(6, tableX, alice, 'A wrote');
  const fromB = [...(await makeEntries(3, tableX, alice, 'B wrote')), ...(await makeEntries(3, tableY, alice, 'B wrote'))];
  assert.equal((await putAll(a.url, fromA)).stored, 6);
  assert.equal((await putAll(b.url, fromB)).stored, 6);
  assert.equal(await a.store.count(), 6, 'partitioned: A holds only its own');

  await a.peering!.sayHelloNow(b.onion!.address);
  written.push(...fromA, ...fromB);
  const all = written.map((e) => e.idHex).sort();
  await converged(new Map([[a, all], [b, all]]), 'A and B hold the same entries');
});

test(onBackend('three nodes converge, and a node mirroring a whitelist receives only its tables'), async () => {
  c = await startOnionNode({ allowedTables: [X] });
  const fromC = await makeEntries(4, tableX, alice, 'C wrote');
  assert.equal((await putAll(c.url, fromC)).stored, 4);
  await c.peering!.sayHelloNow(b.onion!.address);
  // Written after C met B: these spread by fresh-entry pushes and the scheduler alike.
  const lateA = [...(await makeEntries(2, tableX, alice, 'A late')), ...(await makeEntries(1, tableY, alice, 'A late'))];
  assert.equal((await putAll(a.url, lateA)).stored, 3);

  written.push(...fromC, ...lateA);
  const all = written.map((e) => e.idHex).sort();
  const onlyX = written.filter((e) => e.entry.table.equals(lateA[0]!.entry.table)).map((e) => e.idHex).sort();
  assert.equal(onlyX.length, 15, 'X entries: 6 by A, 3 by B, 4 by C, 2 late by A');
  await converged(new Map([[a, all], [b, all], [c, onlyX]]), 'A and B hold everything, C every entry of X');
  const byTable = (await c.store.countByTable()).map((t) => t.fingerprint.toString('hex'));
  assert.deepEqual(byTable, [X], 'C stored no entry of a table it does not mirror');
});

test(onBackend('a malicious onion peer gets none of its forged entries stored, and is penalised then banned'), async () => {
  const net = await testnet;
  const mallory: MaliciousPeer = await startMaliciousPeer(net, { table: tableX, intruderTable: tableY, to: alice, forged: 9 });
  closers.push(() => mallory.close());
  const outcomes: SyncOutcome[] = [];
  c.sync!.service.onOutcome((o) => {
    if (o.peer === mallory.onion) outcomes.push(o);
  });
  const before = await allIds(c.store);
  await c.peering!.sayHelloNow(mallory.onion);
  // The scheduler may get there first; either way a session with Mallory runs to its end.
  await c.sync!.syncNow(mallory.onion).catch((e: P2pdbError) => assert.equal(e.code, 'peer_banned'));
  await waitFor(() => outcomes.length > 0, { timeoutMs: 60_000, what: 'a session with the malicious peer' });
  const first = outcomes[0]!;
  assert.ok(first.report, `the session ran: ${JSON.stringify(first.error)}`);
  const o = first.report.offences;
  assert.equal(first.report.stored, 0);
  assert.ok(first.report.rejected >= 9, `every forged entry was refused by verification (${first.report.rejected})`);
  assert.ok(o.invalid >= 9, `invalid entries counted: ${JSON.stringify(o)}`);
  assert.ok(o.wrongTable + o.unsolicited >= 1, `the intruder entry was refused before verification: ${JSON.stringify(o)}`);
  assert.ok(first.points > 0);
  assert.deepEqual(await allIds(c.store), before, 'nothing of Mallory was stored');
  const forged = new Set(mallory.forgedIds);
  for (const node of [a, b, c]) assert.ok(!(await allIds(node.store)).some((id) => forged.has(id)));
  assert.ok(!(await allIds(c.store)).includes(mallory.intruder.idHex));

  // 9 invalid entries and an intruder pass the threshold (100 points) in one session.
  const state = await c.store.syncState.penaltyOf(mallory.onion);
  assert.ok(state.bannedUntil! > Date.now(), `banned: ${JSON.stringify(state)}`);
  await assert.rejects(c.sync!.syncNow(mallory.onion), (e: P2pdbError) => e.code === 'peer_banned');
  assert.ok(!(await c.sync!.service.candidates()).some((p) => p.onion === mallory.onion), 'not scheduled while banned');
});

// ---- an interrupted bootstrap, in child processes that can be SIGKILLed ----

const CHILD = fileURLToPath(new URL('./helpers/sync-node-child.js', import.meta.url));

interface Child {
  proc: ChildProcess;
  ready: Promise<{ url: string; onion: string; torPid?: number }>;
  lines: Record<string, unknown>[];
  exited: Promise<void>;
}

function spawnSyncNode(args: { config: ConfigInput; pageLimit?: number; killAtFetched?: number }): Child {
  const proc = spawn(process.execPath, [CHILD, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: Record<string, unknown>[] = [];
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const ready = new Promise<{ url: string; onion: string; torPid?: number }>((resolve, reject) => {
    let buf = '';
    proc.stdout!.on('data', (chunk: Buffer) => {
      buf += chunk.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = JSON.parse(buf.slice(0, nl)) as Record<string, unknown>;
        buf = buf.slice(nl + 1);
        lines.push(line);
        if (line.ready) resolve(line.ready as { url: string; onion: string; torPid?: number });
      }
    });
    proc.once('exit', (code, signal) => reject(new Error(`sync node exited early (${code ?? signal})`)));
  });
  ready.catch(() => {});
  return { proc, ready, lines, exited };
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function idsOverHttp(url: string): Promise<string[]> {
  const ids: string[] = [];
  let afterSeq = '0';
  for (;;) {
    const page = (await (await fetch(`${url}/get/?after=${afterSeq}&limit=1000`)).json()) as { entries: { id: string }[]; next: string | null };
    ids.push(...page.entries.map((e) => e.id));
    if (page.next === null) return ids.sort();
    afterSeq = page.next;
  }
}

test(onBackend('a bootstrap killed midway resumes from its cursor after a restart, without loss or duplicates; p2pdb sync drives it'), async () => {
  // F: the full node, with no periodic sync (so it never pushes to the newcomer: P must pull).
  const f = await startOnionNode({ syncIntervalMs: 0 });
  const entries = await makeEntries(40, tableX, alice, 'F holds');
  assert.equal((await putAll(f.url, entries)).stored, 40);
  const expected = entries.map((e) => e.idHex).sort();

  const config = await torConfig({ peers: [f.onion!.address], syncIntervalMs: 60_000 });
  const first = spawnSyncNode({ config, pageLimit: 5, killAtFetched: 10 });
  const children = [first];
  closers.push(async () => {
    for (const ch of children) if (ch.proc.exitCode === null && ch.proc.signalCode === null) ch.proc.kill('SIGTERM');
    await Promise.all(children.map((ch) => ch.exited));
  });
  const firstReady = await first.ready;
  await first.exited;
  assert.equal(first.proc.signalCode, 'SIGKILL', 'the node died mid-bootstrap');
  const killing = first.lines.find((l) => l.killing !== undefined)!;
  assert.ok(killing, 'it was killed from inside a range pull');
  const fetchedBeforeKill = killing.killing as number;
  assert.ok(fetchedBeforeKill >= 10 && fetchedBeforeKill < 40);
  // Its tor would exit by itself once it notices its owner is gone (__OwningControllerProcess);
  // stop it now (by its pid), so the restarted node's tor can take the data directory sooner.
  if (firstReady.torPid) {
    const torPid = firstReady.torPid;
    if (pidAlive(torPid)) process.kill(torPid, 'SIGTERM');
    await waitFor(() => !pidAlive(torPid), { timeoutMs: 60_000, what: 'the killed node’s tor exited' });
  }

  const second = spawnSyncNode({ config, pageLimit: 5 });
  children.push(second);
  const ready = await second.ready;
  assert.equal(ready.onion, firstReady.onion, 'same identity after the restart');
  const outcome = await waitFor(
    () => second.lines.map((l) => l.outcome as SyncOutcome | undefined).find((o) => o && o.peer === f.onion!.address && o.ok),
    { timeoutMs: 120_000, what: 'the restarted node synced with F' },
  );
  const report = outcome.report!;
  assert.equal(report.resumed, 1, 'the interrupted range pull was resumed');
  assert.equal(report.resumedFetched, 40 - fetchedBeforeKill, 'from its cursor');
  // The page beyond the cursor may have been committed before the kill: fetched again, not stored twice.
  assert.ok(report.duplicates <= 5, `at most one page (5) fetched again: ${report.duplicates}`);
  assert.equal(report.stored + report.duplicates, 40 - fetchedBeforeKill);
  const ids = await idsOverHttp(ready.url);
  assert.deepEqual(ids, expected, 'no loss');
  assert.equal(new Set(ids).size, ids.length, 'no entry stored twice');

  // `p2pdb sync F` asks the running node through its control listener and shows progress.
  const cli = await runScript(CLI_MAIN, ['sync', f.onion!.address, '--data', String(config.dataDir)], { timeoutMs: 120_000 });
  assert.equal(cli.code, 0, cli.stderr);
  assert.match(cli.stdout, /\[#+\] 100% done/);
  assert.match(cli.stdout, new RegExp(`synced with ${f.onion!.address}: 0 stored`));
  const unknown = await runScript(CLI_MAIN, ['sync', 'x'.repeat(10), '--data', String(config.dataDir)], { timeoutMs: 60_000 });
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /error \[malformed\]/);
});
