/**
 * `p2pdb get --follow` and `p2pdb pair` as a user runs them: child processes, a real node, a
 * real keyring. Output is waited on, never slept for.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodePairingFragment } from '../src/client/pairing.js';
import { resolveConfig } from '../src/config/config.js';
import { addClient, readClients } from '../src/identity/client-auth.js';
import { loadOrCreateIdentity } from '../src/identity/identity-file.js';
import { startNode, type RunningNode } from '../src/node/node.js';
import { waitFor } from '../src/tor/wait.js';
import { silentLogger } from '../src/util/log.js';
import { CLI_MAIN, cleanEnv, closedPort, runCli } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';

const PASS = 'follow test passphrase';
let node: RunningNode;
let dataDir: string;
let env: Record<string, string>;
const children: ChildProcess[] = [];

before(async () => {
  dataDir = tempDir('p2pdb-follow-node-');
  node = await startNode(resolveConfig({ dataDir, port: 0, powBits: 8 }), { log: silentLogger });
  const home = tempDir('p2pdb-follow-home-');
  env = { P2PDB_HOME: home, P2PDB_PASSPHRASE: PASS, P2PDB_NODE: node.url, HOME: home };
  for (const name of ['board', 'alice']) {
    const r = await runCli(['keys', 'new', name], { env });
    assert.equal(r.code, 0, r.stderr);
  }
});
after(async () => {
  for (const c of children) c.kill('SIGKILL');
  await node.close();
});

function follow(args: string[]) {
  const child = spawn(process.execPath, [CLI_MAIN, 'get', '--follow', ...args], { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    stdout: () => out,
    stderr: () => err,
    exited,
    waitFor: (what: string, test: () => boolean) =>
      waitFor(() => test() || (child.exitCode !== null ? Promise.reject(new Error(`follow exited: ${err}`)) : false), { timeoutMs: 30_000, intervalMs: 20, what: `${what}\nstdout: ${out}\nstderr: ${err}` }),
  };
}

async function put(text: string): Promise<void> {
  const r = await runCli(['put', '--table', 'board', '--to', 'alice', text], { env });
  assert.equal(r.code, 0, r.stderr);
}

const count = (haystack: string, needle: string) => haystack.split(needle).length - 1;

describe('p2pdb get --follow', () => {
  it('prints what is stored, then entries put by another process as they arrive, decrypted; survives a node restart without repeats', async () => {
    await put('before following');
    const f = follow(['--recipient', 'alice']);
    await f.waitFor('the old entry and the stream open', () => f.stdout().includes('before following') && f.stderr().includes('following'));
    await put('hello while following');
    await f.waitFor('the live entry', () => f.stdout().includes('hello while following'));
    assert.match(f.stdout(), /board -> alice: hello while following/);

    // The node goes away and comes back on the same port: the follower reconnects and resumes.
    const port = node.port;
    await node.close();
    await f.waitFor('the loss to be noticed', () => f.stderr().includes('connection to'));
    node = await startNode(resolveConfig({ dataDir, port, powBits: 8 }), { log: silentLogger });
    await put('after the restart');
    await f.waitFor('the entry after the restart', () => f.stdout().includes('after the restart'));
    assert.ok(f.stderr().includes('reconnected'), f.stderr());
    for (const text of ['before following', 'hello while following', 'after the restart']) {
      assert.equal(count(f.stdout(), text), 1, `"${text}" printed once`);
    }
    children.at(-1)!.kill('SIGTERM');
    assert.equal(await f.exited, 0, 'Ctrl-C / SIGTERM ends it cleanly');
  });

  it('refuses --limit with --follow', async () => {
    const r = await runCli(['get', '--follow', '--limit', '3'], { env });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--limit and --follow/);
  });
});

describe('p2pdb pair', () => {
  it('prints a link whose fragment carries the keyring keys, a QR code, and a warning', async () => {
    const r = await runCli(['pair', '--table', 'board', '--recipient', 'alice', '--label', 'Board', '--url', 'http://127.0.0.1:8733/some/path'], { env });
    assert.equal(r.code, 0, r.stderr);
    const link = r.stdout.split('\n')[0]!;
    assert.match(link, /^http:\/\/127\.0\.0\.1:8733\/#pair=1&t=/);
    const decoded = decodePairingFragment(link.slice(link.indexOf('#') + 1));
    for (const [name, jwk] of [['board', decoded.table], ['alice', decoded.recipient!]] as const) {
      const pem = await runCli(['keys', 'export', name, '--private'], { env });
      const expected = createPrivateKey(pem.stdout).export({ format: 'jwk' });
      assert.equal(jwk.n, expected.n, `${name}: n`);
      assert.equal(jwk.d, expected.d, `${name}: d`);
    }
    assert.equal(decoded.label, 'Board');
    assert.ok(/[▀▄█]/.test(r.stdout) && r.stdout.split('\n').length > 20, 'a QR code block follows the link');
    assert.doesNotMatch(r.stdout, /\x1b/, 'no colour codes when stdout is not a terminal (a file, a pipe)');
    assert.match(r.stderr, /WARNING: this link carries the private keys of table board and recipient alice/);
  });

  it('for a private node: a note on how to get a client key, and --client NAME makes one and prints it', async () => {
    const data = tempDir('p2pdb-pair-private-');
    const { identity } = await loadOrCreateIdentity(data);
    writeFileSync(path.join(data, 'status.json'), JSON.stringify({ onion: identity.address, tor: { mode: 'managed', published: true }, updated_at: Date.now() }));
    await addClient(data, 'laptop');
    const noted = await runCli(['pair', '--table', 'board', '--data', data, '--no-qr'], { env });
    assert.equal(noted.code, 0, noted.stderr);
    assert.match(noted.stderr, /this node is private \(1 authorized client key\)/);
    assert.match(noted.stderr, /--client NAME/);
    const made = await runCli(['pair', '--table', 'board', '--data', data, '--client', 'phone', '--no-qr'], { env });
    assert.equal(made.code, 0, made.stderr);
    const key = /Tor Browser key for \S+\.onion[^\n]*\n([A-Z2-7]{52})$/m.exec(made.stdout)?.[1];
    assert.ok(key, made.stdout);
    assert.deepEqual((await readClients(data)).map((c) => c.name), ['laptop', 'phone']);
    assert.ok(!readFileSync(path.join(data, 'identity', 'clients.json'), 'utf8').includes(key!), 'the private key is not stored');
  });

  it("takes the onion address from the node's status.json, and refuses a bad one", async () => {
    const onion = 'aoqqpp7tzyil4hlq3umoos6atft6jvrqtosq2xy53sdgiesvgg4bqead.onion';
    const data = tempDir('p2pdb-pair-data-');
    mkdirSync(data, { recursive: true });
    writeFileSync(path.join(data, 'status.json'), JSON.stringify({ onion, tor: { mode: 'managed', published: true }, updated_at: Date.now() }));
    const r = await runCli(['pair', '--table', 'board', '--data', data, '--no-qr'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout.trim(), new RegExp(`^http://${onion}/#pair=1&t=[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$`));
    const bad = await runCli(['pair', '--table', 'board', '--onion', 'example.com'], { env });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /not_onion_url/);
  });

  it('with the node running without Tor (npm start), links to that node and says what that means', async () => {
    const r = await runCli(['pair', '--table', 'board', '--data', tempDir('p2pdb-pair-empty-'), '--no-qr'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.startsWith(`${node.url}/#pair=1&t=`), r.stdout);
    assert.match(r.stderr, /runs without Tor, so the link opens its app there: only a browser on this machine/);
  });

  it('with no node at all, says how to start one or which flag to give', async () => {
    const r = await runCli(['pair', '--table', 'board', '--data', tempDir('p2pdb-pair-empty-'), '--node', `http://127.0.0.1:${await closedPort()}`], { env });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /error \[node_unreachable\]: no node to point the link at: .*start the node \(npm start\), or give --url http:\/\/127\.0\.0\.1:8733/);
  });

  it("says when the onion of status.json belongs to a node that stopped or was killed", async () => {
    const onion = 'aoqqpp7tzyil4hlq3umoos6atft6jvrqtosq2xy53sdgiesvgg4bqead.onion';
    const data = tempDir('p2pdb-pair-stale-');
    const write = (extra: object) => writeFileSync(path.join(data, 'status.json'), JSON.stringify({ onion, tor: { mode: 'managed', published: true }, updated_at: Date.now(), ...extra }));
    // A pid that cannot be running: beyond Linux's pid_max.
    for (const [extra, said] of [[{ pid: 2 ** 30 }, /not running \(process \d+ is gone/], [{ pid: process.pid, stopped_at: Date.now() }, /node that stopped at/]] as const) {
      write(extra);
      const r = await runCli(['pair', '--table', 'board', '--data', data, '--no-qr'], { env });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.stdout.startsWith(`http://${onion}/#pair=1`), r.stdout);
      assert.match(r.stderr, said);
      assert.match(r.stderr, /the link will work once that node runs again with Tor/);
      const st = await runCli(['status', '--data', data], { env });
      assert.match(st.stdout, said);
    }
  });
});
