// Private nodes (issue 12 item 2): `p2pdb clients add/list/remove` and Tor v3 client
// authorization on the private Tor network, with two client tors: one holding a key, one not.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { resolveConfig } from '../src/config/config.js';
import { P2pdbError } from '../src/errors.js';
import { addClient, clientAuthLine, clientsFile, newClientKeyPair, readClients, removeClient } from '../src/identity/client-auth.js';
import { loadOrCreateIdentity } from '../src/identity/identity-file.js';
import { base32Decode } from '../src/identity/onion-key.js';
import { startNode, type RunningNode } from '../src/node/node.js';
import { addOnionCommand } from '../src/tor/control.js';
import { SOCKS_ONION_REPLIES, peerAgent, socksConnectReply } from '../src/tor/socks.js';
import type { ClientTor } from '../src/tor/testnet.js';
import { waitFor } from '../src/tor/wait.js';
import { createLogger } from '../src/util/log.js';
import { runCli } from './helpers/cli.js';
import { useTestnet, waitForOnionAnswer } from './helpers/testnet.js';
import { tempDir } from './helpers/tmp.js';

const testnet = useTestnet();
const mode = (file: string) => statSync(file).mode & 0o777;
const isCode = (code: string) => (err: unknown) => err instanceof P2pdbError && err.code === code;

describe('client keys (no network)', () => {
  test('a key pair is x25519 in upper-case base32 (52 chars); the public half derives from the private one', () => {
    const pair = newClientKeyPair();
    assert.match(pair.privateKey, /^[A-Z2-7]{52}$/);
    assert.match(pair.publicKey, /^[A-Z2-7]{52}$/);
    const d = base32Decode(pair.privateKey.toLowerCase());
    const priv = createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: d.toString('base64url'), x: '' }, format: 'jwk' } as never);
    const x = Buffer.from(createPublicKey(priv).export({ format: 'jwk' }).x!, 'base64url');
    assert.deepEqual(base32Decode(pair.publicKey.toLowerCase()), x);
    const onion = 'a'.repeat(55) + 'd.onion';
    assert.equal(clientAuthLine(onion, pair.privateKey), `${'a'.repeat(55)}d:descriptor:x25519:${pair.privateKey}`);
  });

  test('ADD_ONION carries one ClientAuthV3 per key, and refuses a malformed key', () => {
    const a = newClientKeyPair().publicKey;
    const b = newClientKeyPair().publicKey;
    const cmd = addOnionCommand({ keyBlob: 'NEW', virtualPort: 80, target: '127.0.0.1:1234', clientAuthV3: [a, b] });
    assert.match(cmd, /Flags=V3Auth /);
    assert.match(cmd, new RegExp(`ClientAuthV3=${a} ClientAuthV3=${b} Port=80,127.0.0.1:1234$`));
    assert.throws(() => addOnionCommand({ keyBlob: 'NEW', virtualPort: 80, target: '127.0.0.1:1', clientAuthV3: ['x y'] }), isCode('tor_control'));
  });

  test('clients.json: 0600, names unique, the last client is removed only with makePublic', async () => {
    const dir = tempDir();
    assert.deepEqual(await readClients(dir), []);
    await addClient(dir, 'alice');
    await addClient(dir, 'bob');
    await assert.rejects(addClient(dir, 'alice'), isCode('key_exists'));
    await assert.rejects(addClient(dir, 'no spaces'), isCode('malformed'));
    assert.equal(mode(clientsFile(dir)), 0o600);
    assert.deepEqual((await readClients(dir)).map((c) => c.name), ['alice', 'bob']);
    await removeClient(dir, 'alice');
    await assert.rejects(removeClient(dir, 'bob'), (e: unknown) => isCode('config_invalid')(e) && /--make-public/.test((e as Error).message));
    await assert.rejects(removeClient(dir, 'carol'), isCode('key_not_found'));
    assert.deepEqual(await removeClient(dir, 'bob', { makePublic: true }), { remaining: 0 });
    chmodSync(clientsFile(dir), 0o644);
    await assert.rejects(readClients(dir), isCode('identity_permissions'));
  });

  test('p2pdb clients add prints the key once and stores only the public half; list and remove', async () => {
    const dir = tempDir();
    const env = { P2PDB_DATA: dir };
    const added = await runCli(['clients', 'add', 'laptop'], { env });
    assert.equal(added.code, 0, added.stderr);
    const privateKey = /^private key\s+([A-Z2-7]{52})$/m.exec(added.stdout)?.[1];
    assert.ok(privateKey, added.stdout);
    const { identity } = await loadOrCreateIdentity(dir);
    assert.match(added.stdout, new RegExp(`^auth line\\s+${identity.address.replace('.onion', '')}:descriptor:x25519:${privateKey}$`, 'm'));
    assert.match(added.stderr, /now PRIVATE/);
    assert.match(added.stderr, /when it next starts/);
    const stored = readFileSync(clientsFile(dir), 'utf8');
    assert.ok(!stored.includes(privateKey!), 'the private key is never stored');
    assert.equal(mode(clientsFile(dir)), 0o600);

    const listed = await runCli(['clients', 'list'], { env });
    assert.equal(listed.code, 0);
    assert.match(listed.stdout, /^laptop\s+added \S+\s+public key [A-Z2-7]{52}$/m);
    assert.ok(!listed.stdout.includes(privateKey!));

    const last = await runCli(['clients', 'remove', 'laptop'], { env });
    assert.equal(last.code, 1);
    assert.match(last.stderr, /last authorized client/);
    const removed = await runCli(['clients', 'remove', 'laptop', '--make-public'], { env });
    assert.equal(removed.code, 0, removed.stderr);
    assert.match(removed.stdout, /PUBLIC again/);
    assert.equal((await runCli(['clients', 'bogus'], { env })).code, 2);
  });
});

/** Starts a client tor whose ClientOnionAuthDir holds `lines` (one .auth_private file each). */
async function clientTorWithKeys(name: string, lines: string[]): Promise<ClientTor> {
  const net = await testnet;
  const authDir = path.join(tempDir(`p2pdb-auth-${name}-`), 'onion-auth');
  mkdirSync(authDir, { mode: 0o700 });
  lines.forEach((line, i) => writeFileSync(path.join(authDir, `key${i}.auth_private`), line + '\n', { mode: 0o600 }));
  return net.startClientTor(name, { extraLines: [`ClientOnionAuthDir ${authDir}`] });
}

/** SOCKS replies for the node's onion port 80 from `client`, until `until` says stop. */
async function socksUntil(client: ClientTor, address: string, until: (code: number) => boolean, seen: number[], timeoutMs = 90_000): Promise<number> {
  return waitFor(
    async (note) => {
      const code = await socksConnectReply(client.socksPort, address, 80, 30_000).catch((err: Error) => (note(err.message), -1));
      if (code >= 0) seen.push(code);
      note(`last SOCKS reply 0x${code.toString(16)} (${SOCKS_ONION_REPLIES[code] ?? 'unknown'})`);
      return until(code) ? code : undefined;
    },
    { timeoutMs, intervalMs: 500, what: `SOCKS reply from ${client.name}` },
  );
}

describe('a private node on the private Tor network', () => {
  const dataDir = tempDir('p2pdb-private-node-');
  const lines: string[] = [];
  const log = createLogger((l) => lines.push(l), 'debug');
  let node: RunningNode | undefined;
  let holder: ClientTor;
  let stranger: ClientTor;
  let address = '';
  const timings: Record<string, number> = {};

  before(async () => {
    const net = await testnet;
    const { identity } = await loadOrCreateIdentity(dataDir);
    address = identity.address;
    const alice = await addClient(dataDir, 'alice');
    [holder, stranger] = await Promise.all([clientTorWithKeys('holder', [clientAuthLine(address, alice.privateKey)]), net.startClientTor('stranger')]);
    const t0 = Date.now();
    node = await startNode(resolveConfig({ dataDir, port: 0, powBits: 12, tor: 'managed', torExtraLines: net.networkTorrcLines() }), { log });
    timings.startNode = Date.now() - t0;
  });

  after(async () => {
    await node?.close();
    process.stderr.write(`clients timings (ms): ${JSON.stringify(timings)}\n`);
  });

  test('the tor holding the key reaches /hello/; the one without gets "needs client authorization"', async () => {
    assert.equal(node!.onion!.state().clientAuth.clients, 1);
    const t0 = Date.now();
    const agent = peerAgent(holder.socksPort);
    try {
      const answer = await waitForOnionAnswer(`http://${address}/hello/`, agent, 120_000);
      assert.equal(answer.status, 200);
      assert.equal((JSON.parse(answer.body) as { onion: string }).onion, address);
      timings.holderReachable = Date.now() - t0;
    } finally {
      agent.destroy();
    }
    // The descriptor is on the HSDirs now (the holder fetched it): the stranger fetches it too
    // and cannot open it. Every reply must be a failure, ending in tor's 0xF4.
    const seen: number[] = [];
    const code = await socksUntil(stranger, address, (c) => c === 0xf4 || c === 0x00, seen);
    timings.strangerReply = code;
    assert.equal(code, 0xf4, `stranger replies: ${seen.map((c) => c.toString(16)).join(',')}`);
    assert.ok(!seen.includes(0x00), 'the stranger never got a stream');
    assert.ok(lines.some((l) => /onion published as a private node/.test(l)));
  });

  test('clients add/remove on a running node: re-published; the removed key is shut out, a new key gets in', async () => {
    const onion = node!.onion!;
    const before = onion.state().publishCount;
    const env = { P2PDB_DATA: dataDir };
    const added = await runCli(['clients', 'add', 'bob'], { env });
    assert.equal(added.code, 0, added.stderr);
    assert.match(added.stderr, /running node re-publishes/);
    const bobKey = /^private key\s+([A-Z2-7]{52})$/m.exec(added.stdout)![1]!;
    await waitFor(() => onion.publishedClientKeys().length === 2, { timeoutMs: 30_000, what: 're-publish with 2 keys' });
    const t0 = Date.now();
    const removed = await runCli(['clients', 'remove', 'alice'], { env });
    assert.equal(removed.code, 0, removed.stderr);
    await waitFor(() => onion.publishedClientKeys().length === 1 && onion.state().published, { timeoutMs: 60_000, what: 're-published without alice' });
    timings.removeToRepublished = Date.now() - t0;
    assert.ok(onion.state().publishCount >= before + 2);
    assert.equal(onion.publishedClientKeys()[0], (await readClients(dataDir))[0]!.publicKey);

    // The holder still has alice's key (and a cached descriptor): it must not get a stream
    // again, and ends with tor's "client authorization is wrong/missing" reply.
    const seen: number[] = [];
    const t1 = Date.now();
    const code = await socksUntil(holder, address, (c) => c === 0xf4 || c === 0xf5 || c === 0x00, seen, 120_000);
    timings.removedShutOut = Date.now() - t1;
    timings.removedReply = code;
    assert.notEqual(code, 0x00, `the removed client still got in (replies ${seen.map((c) => c.toString(16)).join(',')})`);
    assert.ok(!seen.includes(0x00));

    // Bob's key (given to the stranger's tor over its control port) opens it: the node is still up.
    const { TorControl } = await import('../src/tor/control.js');
    const control = await TorControl.connect({ port: stranger.controlPort });
    try {
      await control.onionClientAuthAdd(address.replace('.onion', ''), bobKey);
    } finally {
      control.close();
    }
    const t2 = Date.now();
    const agent = peerAgent(stranger.socksPort);
    try {
      const answer = await waitForOnionAnswer(`http://${address}/hello/`, agent, 120_000);
      assert.equal(answer.status, 200);
      timings.newKeyReachable = Date.now() - t2;
    } finally {
      agent.destroy();
    }
  });
});
