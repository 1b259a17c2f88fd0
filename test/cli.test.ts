import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { NodeApi } from '../src/client/node-api.js';
import { openEntry, verifyStoredEntry } from '../src/client/read.js';
import { createEntry, type MintFunction } from '../src/client/write.js';
import { loadConfig } from '../src/config/config.js';
import { P2pdbError } from '../src/errors.js';
import { mintProof } from '../src/pow/mint.js';
import { CLI_MAIN, cleanEnv, closedPort, runCli, runScript, spawnServe, TEST_SERVER_SCRIPT, type ServeProcess } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';
import { spawn } from 'node:child_process';
import { mintProgressText, roughDuration } from '../src/cli/put.js';
import { waitFor } from '../src/tor/wait.js';

const PASS = 'test passphrase, not a secret';
const MESSAGE = 'meet at the old mill at noon';
const STDIN_MESSAGE = 'second message, from stdin';
const LAUNCHER = fileURLToPath(new URL('../../scripts/p2pdb.mjs', import.meta.url));

function ok(r: { code: number | null; stdout: string; stderr: string }, what: string): void {
  assert.equal(r.code, 0, `${what} failed\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
}

/** A loopback HTTP server in front of a real node that corrupts what /get/ returns: a lying node. */
function tamperingProxy(target: string): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    void (async () => {
      const upstream = await fetch(target + req.url);
      const body = (await upstream.json()) as { entries?: Record<string, string>[] };
      body.entries?.forEach((e, i) => {
        const field = i % 2 === 0 ? 'payload' : 'signature';
        const bytes = Buffer.from(e[field]!, 'base64');
        bytes[bytes.length - 1]! ^= 1;
        e[field] = bytes.toString('base64');
      });
      res.writeHead(upstream.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    })().catch((err) => {
      res.writeHead(500);
      res.end(String(err));
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve({ url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, server })),
  );
}

describe('p2pdb CLI against a running node', () => {
  let serve: ServeProcess;
  let dataDir: string;
  let env: Record<string, string>;
  let firstId: string;

  before(async () => {
    const home = path.join(tempDir('p2pdb-cli-'), 'home');
    dataDir = path.join(tempDir('p2pdb-cli-'), 'data');
    serve = await spawnServe(['--data', dataDir, '--port', '0', '--pow-bits', '12']);
    env = { P2PDB_HOME: home, P2PDB_PASSPHRASE: PASS, P2PDB_NODE: serve.url, HOME: home };
  });

  after(async () => {
    if (!serve) return;
    const code = await serve.stop();
    assert.equal(code, 0, 'serve stops cleanly on SIGTERM');
    assert.match(serve.stdout(), /SIGTERM: stopping \(.*\)\nstopped in \d+\.\d s\n/);
  });

  test('serve prints its URL and says Tor is off', () => {
    assert.match(serve.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.match(serve.stdout(), /Tor is off: the node is reachable on loopback only/);
  });

  test('a second serve on a port in use says so with a stable code; the first node keeps serving', async () => {
    const port = new URL(serve.url).port;
    const busyData = path.join(tempDir('p2pdb-cli-busy-'), 'data');
    const r = await runCli(['serve', '--data', busyData, '--port', port, '--pow-bits', '12'], { env });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /error \[config_invalid\]: 127\.0\.0\.1:\d+ is already in use .*--port/);
    assert.equal(existsSync(busyData), false, 'no data dir is left behind');
    ok(await runCli(['status'], { env }), 'the first node still answers');
  });

  test('keys new --bits outside 2048-4096 is one clear usage error', async () => {
    for (const bits of ['1024', '5000', 'x']) {
      const r = await runCli(['keys', 'new', 'never', '--bits', bits], { env });
      assert.equal(r.code, 2);
      assert.match(r.stderr, /--bits must be a whole number from 2048 to 4096/);
    }
  });

  test('keys new makes a table key and a recipient key; keys list shows them', async () => {
    ok(await runCli(['keys', 'new', 'table'], { env }), 'keys new table');
    const alice = await runCli(['keys', 'new', 'alice', '--bits', '2048'], { env });
    ok(alice, 'keys new alice');
    assert.match(alice.stdout, /^created key alice \(RSA 2048\) [0-9a-f]{64}\n$/);
    const list = await runCli(['keys', 'list'], { env: { ...env, P2PDB_PASSPHRASE: undefined } });
    ok(list, 'keys list without a passphrase');
    assert.match(list.stdout, /^table\s+[0-9a-f]{64}\s+private\s+RSA 2048\nalice\s+[0-9a-f]{64}\s+private\s+RSA 2048\n$/);
    assert.equal(statSync(env.P2PDB_HOME!).mode & 0o777, 0o700);
    assert.equal(statSync(path.join(env.P2PDB_HOME!, 'keyring.json')).mode & 0o777, 0o600);
  });

  test('put posts an encrypted entry and prints its status and id', async () => {
    const r = await runCli(['put', '--table', 'table', '--to', 'alice', MESSAGE], { env });
    ok(r, 'put');
    const m = /^stored ([0-9a-f]{64})\n$/.exec(r.stdout);
    assert.ok(m, `unexpected put output: ${r.stdout}`);
    firstId = m[1]!;
    assert.equal(r.stderr, '', 'no progress line when stderr is not a terminal');
  });

  test('put reads the message from stdin with -', async () => {
    ok(await runCli(['put', '--table', 'table', '--to', 'alice', '-'], { env, input: STDIN_MESSAGE }), 'put -');
  });

  test('get verifies, decrypts and prints the messages addressed to our keys', async () => {
    const r = await runCli(['get'], { env });
    ok(r, 'get');
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 2, r.stdout);
    assert.match(lines[0]!, new RegExp(`^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ  table -> alice: ${MESSAGE}$`));
    assert.match(lines[1]!, new RegExp(`table -> alice: ${STDIN_MESSAGE}$`));

    const json = await runCli(['get', '--json', '--since', '10m', '--limit', '1'], { env });
    ok(json, 'get --json');
    const rows = json.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(rows.length, 1, '--limit caps the output');
    assert.equal(rows[0].id, firstId);
    assert.equal(rows[0].text, MESSAGE);
    assert.equal(rows[0].decrypted, true);
    assert.equal(rows[0].table_name, 'table');
    assert.equal(rows[0].recipient_name, 'alice');
  });

  test("the node's files hold ciphertext only", () => {
    const files = readdirSync(dataDir).filter((f) => f.startsWith('p2pdb.sqlite'));
    assert.ok(files.includes('p2pdb.sqlite'), `no sqlite file in ${readdirSync(dataDir).join(', ')}`);
    const stored = Buffer.concat(files.map((f) => readFileSync(path.join(dataDir, f))));
    assert.ok(stored.length > 0);
    assert.ok(stored.includes(Buffer.from(firstId, 'hex')) || stored.includes(Buffer.from(firstId)), 'the entry is there');
    for (const text of [MESSAGE, STDIN_MESSAGE, 'old mill']) {
      assert.ok(!stored.includes(Buffer.from(text, 'utf8')), `plaintext ${JSON.stringify(text)} found in the node's files`);
    }
  });

  test('a key we only have the public half of can be written to, not written as', async () => {
    const carol = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
    const imp = await runCli(['keys', 'import', 'carol', '-'], { env: { ...env, P2PDB_PASSPHRASE: undefined }, input: carol.publicKey });
    ok(imp, 'keys import of a public key needs no passphrase');
    assert.match(imp.stdout, /^imported public key carol/);

    const asCarol = await runCli(['put', '--table', 'carol', '--to', 'alice', 'hi'], { env });
    assert.equal(asCarol.code, 1);
    assert.match(asCarol.stderr, /^error \[key_not_found\]: cannot write to table carol: the keyring has only its public key\n$/);

    ok(await runCli(['put', '--table', 'table', '--to', 'carol', 'for carol'], { env }), 'put to a public-only recipient');
    const r = await runCli(['get', '--recipient', 'carol'], { env });
    ok(r, 'get --recipient carol');
    assert.match(r.stdout, /table -> carol: \[encrypted: no private key for this recipient\]\n$/);
    assert.ok(!r.stdout.includes('for carol'));
  });

  test('put to a key that is not in the keyring is key_not_found, before any work', async () => {
    const r = await runCli(['put', '--table', 'table', '--to', 'bob', 'hello bob'], { env });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error \[key_not_found\]: no key named "bob"/);
    assert.equal(r.stdout, '');
  });

  test('get on a node that is not running is node_unreachable, naming the URL', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const r = await runCli(['get', '--node', url], { env });
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`^error \\[node_unreachable\\]: cannot reach the node at ${url.replace(/\./g, '\\.')}`));
  });

  test('status on a node that is not running says so once, with what to do', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const r = await runCli(['status', '--node', url, '--data', tempDir('p2pdb-cli-nodata-')], { env });
    assert.equal(r.code, 1);
    assert.match(r.stdout, /unavailable \[node_unreachable\] \(see the error below\)/);
    assert.equal(r.stderr.split('cannot reach the node').length - 1, 1, `the error once: ${r.stderr}`);
    assert.match(r.stderr, /^hint: is the node running\? Start it with 'npm start'/m);
  });

  test('entries a node corrupted are reported on stderr and not printed', async () => {
    const proxy = await tamperingProxy(serve.url);
    try {
      const r = await runCli(['get', '--node', proxy.url, '--recipient', 'alice'], { env });
      ok(r, 'get through a lying node');
      assert.ok(!r.stdout.includes(MESSAGE) && !r.stdout.includes(STDIN_MESSAGE), r.stdout);
      assert.match(r.stderr, /skipped entry [0-9a-f]{64} from the node: it failed verification \[id_mismatch\]/);
      assert.match(r.stderr, /skipped entry [0-9a-f]{64} from the node: it failed verification \[bad_signature\]/);
    } finally {
      await new Promise((resolve) => proxy.server.close(resolve));
    }
  });

  test('the passphrase: wrong is keyring_bad_passphrase, missing without a terminal is keyring_locked', async () => {
    const wrong = await runCli(['get'], { env: { ...env, P2PDB_PASSPHRASE: 'wrong' } });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /error \[keyring_bad_passphrase\]/);
    const missing = await runCli(['put', '--table', 'table', '--to', 'alice', 'x'], { env: { ...env, P2PDB_PASSPHRASE: undefined } });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /error \[keyring_locked\].*P2PDB_PASSPHRASE/);
  });

  test('keys export prints public PEM, and private PEM only with --private', async () => {
    const pub = await runCli(['keys', 'export', 'alice'], { env: { ...env, P2PDB_PASSPHRASE: undefined } });
    ok(pub, 'export public');
    assert.match(pub.stdout, /^-----BEGIN PUBLIC KEY-----\n[\s\S]+-----END PUBLIC KEY-----\n$/);
    const priv = await runCli(['keys', 'export', 'alice', '--private'], { env });
    ok(priv, 'export private');
    assert.match(priv.stdout, /^-----BEGIN PRIVATE KEY-----\n/);
    const body = priv.stdout.replace(/-----[^-]+-----|\s/g, '');
    assert.ok(!readFileSync(path.join(env.P2PDB_HOME!, 'keyring.json'), 'utf8').includes(body.slice(100, 164)));
  });

  test('usage errors exit with 2', async () => {
    for (const args of [['put', '--table', 'table', 'no recipient'], ['get', '--since', 'banana'], ['frobnicate'], ['keys'], ['get', '--bogus']]) {
      const r = await runCli(args, { env });
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^usage error: /);
    }
    const help = await runCli(['put', '--help'], { env });
    ok(help, 'put --help');
    assert.match(help.stdout, /^usage: p2pdb put --table T --to R MESSAGE/);
  });

  test('an option of serve given to put says where it belongs, in balanced words', async () => {
    const r = await runCli(['put', '--table', 'table', '--to', 'alice', '--pow-bits', '30', 'hi'], { env });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^usage error: unknown option --pow-bits: put mints the proof of work the node asks for .*--pow-bits belongs to 'p2pdb serve'/);
    assert.doesNotMatch(r.stderr, /as in '-- "/);
    const other = await runCli(['get', '-x'], { env });
    assert.match(other.stderr, /^usage error: unknown option -x \(an argument that starts with '-' goes after '--', e\.g\. p2pdb get … -- '-x'\)/);
  });

  test('a duplicate key name is key_exists, not bad_request', async () => {
    const r = await runCli(['keys', 'new', 'alice'], { env });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error \[key_exists\]: the keyring already has a key named alice: choose another name/);
  });

  test('a message too large for the node names the largest that fits', async () => {
    const max = 65536 - (3 + 256 + 12 + 16); // the node's max_payload_bytes minus the envelope for alice's 2048-bit key
    const r = await runCli(['put', '--table', 'table', '--to', 'alice', '-'], { env, input: 'x'.repeat(max + 1) });
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`^error \\[payload_too_large\\]: .*the largest message to alice that fits is ${max} bytes`));
    ok(await runCli(['put', '--table', 'table', '--to', 'alice', '-'], { env, input: 'x'.repeat(max) }), 'the largest message fits');
  });

  test('Ctrl-C while minting stops the workers, sends nothing and exits 130', async () => {
    // A node in front of the real one that asks for 40 bits: minting would take days.
    const seen: string[] = [];
    const front = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      void fetch(serve.url + req.url).then(async (up) => {
        const body = (await up.json()) as { pow_bits?: number };
        if (req.url?.startsWith('/hello/')) body.pow_bits = 40;
        res.writeHead(up.status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      });
    });
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(front.address() as { port: number }).port}`;
      const child = spawn(process.execPath, [CLI_MAIN, 'put', '--table', 'table', '--to', 'alice', 'never sent'], { env: cleanEnv({ ...env, P2PDB_NODE: url }), stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      // Without a terminal, a long mint is announced once, after Ctrl-C is being listened for.
      await waitFor(() => stderr.includes('Ctrl-C cancels'), { timeoutMs: 30_000, intervalMs: 20, what: 'put to start minting' });
      child.kill('SIGINT');
      assert.equal(await exited, 130, stderr);
      assert.match(stderr, /cancelled: nothing was sent to the node/);
      assert.deepEqual(seen.filter((r) => r.startsWith('POST')), [], 'nothing was posted');
    } finally {
      front.close();
    }
  });

  test('the mint progress line shows the rate and the expected time left', () => {
    // 30 bits: 2^26 hashes per token on average; 10 tokens left at 10M hashes/s ≈ 67 s.
    const text = mintProgressText(30, { tokensDone: 6, tokens: 16, hashes: 50e6 }, 5_000);
    assert.equal(text, 'minting proof of work (30 bits): 6/16 tokens, 50.0M hashes, 10.0M hashes/s, about 67 s left');
    assert.match(mintProgressText(40, { tokensDone: 0, tokens: 16, hashes: 1e6 }, 1_000), /about \d+ days left$/);
    assert.equal(roughDuration(600), '10 min');
  });

  test('status shows the node and the keyring, no secrets', async () => {
    const r = await runCli(['status'], { env: { ...env, P2PDB_PASSPHRASE: undefined } });
    ok(r, 'status');
    assert.match(r.stdout, /protocol\s+p2pdb\/1/);
    assert.match(r.stdout, /proof of work\s+12 bits/);
    assert.match(r.stdout, /keys\s+3 \(2 with private key\)/);
    assert.doesNotMatch(r.stdout, /PRIVATE KEY|BEGIN/);
  });

  test("NodeApi: the node's error codes become P2pdbError codes; batches; getAll follows next", async () => {
    const api = new NodeApi(serve.url);
    const table = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const to = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const make = (text: string, mint: MintFunction) =>
      createEntry({ tablePrivateKey: table.privateKey, recipientPublicKey: to.publicKey, plaintext: Buffer.from(text), powBits: 12, mint });
    const good = async (id: Uint8Array, bits: number) => mintProof(id, bits);
    const worthless = async () => Buffer.alloc(128);

    const weak = await make('weak', worthless);
    await assert.rejects(api.put(weak.entry), (e) => e instanceof P2pdbError && e.code === 'pow_insufficient');
    await assert.rejects(api.get({}), (e) => e instanceof P2pdbError && e.code === 'bad_request');

    const a = await make('a', good);
    assert.deepEqual(await api.put(a.entry), { status: 'stored', id: a.id.toString('hex') });
    assert.deepEqual(await api.put(a.entry), { status: 'duplicate', id: a.id.toString('hex') });
    const b = await make('b', good);
    const c = await make('c', good);
    const batch = await api.putBatch([b.entry, weak.entry, c.entry]);
    assert.deepEqual([batch.stored, batch.duplicates, batch.rejected], [2, 0, 1]);
    const rejected = batch.results[1]!;
    assert.ok('error' in rejected && rejected.error.code === 'pow_insufficient');

    const fp = createHash('sha256').update(to.publicKey.export({ type: 'spki', format: 'der' })).digest('hex');
    const texts: string[] = [];
    for await (const json of api.getAll({ recipients: [fp], limit: 1 })) {
      texts.push(openEntry(verifyStoredEntry(json).entry, to.privateKey).toString());
    }
    assert.deepEqual(texts, ['a', 'b', 'c'], 'three pages of one entry each, in order');
  });

  test('scripts/test-server.js posts a message that /get/?seconds_since=10000 returns', async () => {
    const r = await runScript(TEST_SERVER_SCRIPT, ['--node', serve.url, '--message', 'test-server says hi']);
    ok(r, 'test-server');
    const m = /^id ([0-9a-f]{64}) \(stored\)\nmessage test-server says hi\n$/.exec(r.stdout);
    assert.ok(m, r.stdout);
    const res = await fetch(`${serve.url}/get/?seconds_since=10000`);
    const body = (await res.json()) as { entries: { id: string }[] };
    assert.ok(body.entries.some((e) => e.id === m[1]), 'the entry is on the node');
  });
});

describe('p2pdb init and the launcher', () => {
  test('init creates the data directory, a default config.json and the keyring, once', async () => {
    const home = path.join(tempDir('p2pdb-init-'), 'home');
    const dataDir = path.join(tempDir('p2pdb-init-'), 'data');
    const env = { P2PDB_HOME: home, P2PDB_PASSPHRASE: PASS, HOME: home };
    const first = await runCli(['init', '--data', dataDir], { env });
    ok(first, 'init');
    assert.match(first.stdout, /created data directory/);
    assert.match(first.stdout, /wrote .*config\.json with the default settings/);
    assert.match(first.stdout, /created keyring .*keyring\.json \(passphrase set\)/);
    const config = loadConfig({ flags: { dataDir }, env: {} });
    assert.equal(config.port, 8733);
    assert.equal(config.tor, 'off');
    assert.equal(statSync(path.join(home, 'keyring.json')).mode & 0o777, 0o600);

    const second = await runCli(['init', '--data', dataDir], { env: { ...env, P2PDB_PASSPHRASE: undefined } });
    ok(second, 'init again, needing no passphrase');
    assert.match(second.stdout, /config\.json exists, left as it is/);
    assert.match(second.stdout, /keyring .* exists, left as it is/);
  });

  test('the package bin runs the compiled CLI', async () => {
    const r = await runScript(LAUNCHER, ['--version']);
    ok(r, 'p2pdb.mjs --version');
    assert.match(r.stdout, /^p2pdb \d+\.\d+\.\d+\n$/);
  });
});

describe('p2pdb serve --tor managed, stopped with Ctrl-C', () => {
  test('exits at once though tor got the Ctrl-C too, saying what it does', async () => {
    const dataDir = path.join(tempDir('p2pdb-cli-tor-'), 'data');
    mkdirSync(dataDir, { mode: 0o700 });
    // No network: tor adds the onion service all the same, and dials nothing.
    writeFileSync(path.join(dataDir, 'config.json'), JSON.stringify({ torExtraLines: ['DisableNetwork 1'] }));
    const serve = await spawnServe(['--data', dataDir, '--port', '0', '--pow-bits', '12', '--tor', 'managed'], {}, 60_000, { interruptible: true });
    const began = Date.now();
    const code = await serve.interrupt();
    const tookMs = Date.now() - began;
    assert.equal(code, 0, serve.stderr());
    assert.match(serve.stdout(), /SIGINT: stopping \(.*removing the onion service and stopping tor.*\)\nstopped in \d+\.\d s\n/);
    assert.match(serve.stderr(), /"msg":"(tor has already exited; nothing to remove|onion service removed|tor did not take DEL_ONION[^"]*)"/);
    // It used to wait out a 5 s DEL_ONION timer after everything had stopped.
    assert.ok(tookMs < 3_000, `serve took ${tookMs} ms to exit after Ctrl-C`);
  });
});

