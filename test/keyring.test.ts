import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, test } from 'node:test';
import { DEFAULT_SCRYPT, KEYRING_FILE, Keyring, defaultHome, type PassphraseRequest } from '../src/client/keyring.js';
import { passphraseSource } from '../src/client/passphrase.js';
import { exportPrivatePem, generateRsaKeyPair } from '../src/crypto/keys.js';
import { P2pdbError } from '../src/errors.js';
import { withFileLock } from '../src/util/file-lock.js';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';

const PASS = 'correct horse battery staple';

/** A passphrase source that records how often and why it was asked. */
function recordingSource(passphrase = PASS) {
  const calls: PassphraseRequest[] = [];
  return {
    calls,
    source: async (r: PassphraseRequest) => {
      calls.push(r);
      return passphrase;
    },
  };
}

const refuse = async (): Promise<string> => {
  throw new Error('the passphrase must not be needed here');
};

function code(e: unknown): string {
  assert.ok(e instanceof P2pdbError, `expected a P2pdbError, got ${String(e)}`);
  return e.code;
}

function keyringFiles(home: string): string {
  return readdirSync(home)
    .map((f) => readFileSync(path.join(home, f), 'latin1'))
    .join('\n');
}

/** The base64 body of a PEM, without armour and line breaks. */
function pemBody(pem: string): string {
  return pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
}

describe('keyring', () => {
  test('private keys are encrypted at rest; files are private; no temp files linger', async () => {
    const home = path.join(tempDir('p2pdb-keyring-'), 'home');
    const kr = await Keyring.open({ home, passphrase: recordingSource().source });
    assert.equal(kr.exists, false);
    const key = await kr.generate('table');
    const pem = await kr.exportPrivatePem('table');
    const pkcs1 = createPrivateKey(pem).export({ type: 'pkcs1', format: 'pem' }).toString();
    const der = createPrivateKey(pem).export({ type: 'pkcs8', format: 'der' });

    const stored = keyringFiles(home);
    assert.ok(!stored.includes('PRIVATE KEY'), 'no PEM armour of a private key');
    for (const body of [pemBody(pem), pemBody(pkcs1)]) {
      assert.ok(!stored.includes(body), 'the base64 body of the private key is not in the file');
      assert.ok(!stored.includes(body.slice(64, 128)), 'not even one line of it');
    }
    assert.ok(!stored.includes(der.subarray(40, 72).toString('latin1')), 'nor raw DER bytes');
    assert.ok(!stored.includes(der.subarray(40, 72).toString('hex')), 'nor its hex');
    assert.ok(stored.includes(key.fingerprint), 'the public part is in the clear');

    assert.equal(statSync(home).mode & 0o777, 0o700);
    assert.equal(statSync(path.join(home, KEYRING_FILE)).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(home), [KEYRING_FILE]);

    const doc = JSON.parse(readFileSync(path.join(home, KEYRING_FILE), 'utf8'));
    assert.equal(doc.kdf.name, 'scrypt');
    assert.deepEqual({ N: doc.kdf.N, r: doc.kdf.r, p: doc.kdf.p }, DEFAULT_SCRYPT);
    assert.equal(Buffer.from(doc.kdf.salt, 'base64').length, 32);
  });

  test('an existing home directory readable by others is tightened to 0700', async () => {
    const home = tempDir('p2pdb-keyring-');
    (await import('node:fs')).chmodSync(home, 0o755);
    const kr = await Keyring.open({ home, passphrase: recordingSource().source });
    await kr.init();
    assert.equal(statSync(home).mode & 0o777, 0o700);
  });

  test('a wrong passphrase is keyring_bad_passphrase; the right one unlocks', async () => {
    const home = tempDir('p2pdb-keyring-');
    const kr = await Keyring.open({ home, passphrase: recordingSource().source });
    await kr.generate('alice');

    const wrong = await Keyring.open({ home, passphrase: recordingSource('not the passphrase').source });
    await assert.rejects(wrong.privateKey('alice'), (e) => code(e) === 'keyring_bad_passphrase');
    await assert.rejects(wrong.exportPrivatePem('alice'), (e) => code(e) === 'keyring_bad_passphrase');
    await assert.rejects(wrong.generate('bob'), (e) => code(e) === 'keyring_bad_passphrase');
    assert.deepEqual(
      (await Keyring.open({ home, passphrase: refuse })).list().map((k) => k.name),
      ['alice'],
      'a failed unlock changed nothing',
    );

    const right = await Keyring.open({ home, passphrase: recordingSource().source });
    const priv = await right.privateKey('alice');
    assert.equal(priv.type, 'private');
  });

  test('listing, resolving and exporting public keys need no passphrase', async () => {
    const home = tempDir('p2pdb-keyring-');
    const setup = await Keyring.open({ home, passphrase: recordingSource().source });
    const alice = await setup.generate('alice');
    const pair = await generateRsaKeyPair();
    const bob = await setup.importPem('bob', pair.publicKey);

    const kr = await Keyring.open({ home, passphrase: refuse });
    assert.deepEqual(
      kr.list().map((k) => [k.name, k.hasPrivate]),
      [['alice', true], ['bob', false]],
    );
    assert.equal(kr.exportPublicPem('bob'), pair.publicKey);
    assert.equal(kr.resolve('alice').fingerprint, alice.fingerprint);
    assert.equal(kr.resolve(bob.fingerprint).name, 'bob');
    assert.equal(kr.resolve(bob.fingerprint.slice(0, 10)).name, 'bob');
    assert.equal(kr.resolve(bob.fingerprint.slice(0, 10).toUpperCase()).name, 'bob');
    assert.throws(() => kr.resolve(bob.fingerprint.slice(0, 3)), (e) => code(e) === 'key_not_found', 'too short a prefix');
    assert.throws(() => kr.resolve('carol'), (e) => code(e) === 'key_not_found');
    assert.throws(() => kr.resolve('f'.repeat(64)), (e) => code(e) === 'key_not_found');
    await assert.rejects(kr.privateKey('bob'), (e) => code(e) === 'key_not_found', 'a public-only key has no private key');
  });

  test('import and export round-trip public, PKCS#8 and PKCS#1 keys', async () => {
    const home = tempDir('p2pdb-keyring-');
    const kr = await Keyring.open({ home, passphrase: recordingSource().source });
    const a = await generateRsaKeyPair();
    const b = await generateRsaKeyPair();
    const pkcs1 = createPrivateKey(b.privateKey).export({ type: 'pkcs1', format: 'pem' }).toString();

    const ka = await kr.importPem('a', a.privateKey);
    const kb = await kr.importPem('b', pkcs1);
    const pubOnly = await generateRsaKeyPair(3072);
    const kc = await kr.importPem('c', createPublicKey(pubOnly.publicKey).export({ type: 'pkcs1', format: 'pem' }).toString());
    assert.equal(ka.hasPrivate, true);
    assert.equal(kb.hasPrivate, true);
    assert.equal(kc.hasPrivate, false);
    assert.equal(kc.bits, 3072);

    // A fresh instance, so the round trip goes through the file.
    const again = await Keyring.open({ home, passphrase: recordingSource().source });
    assert.equal(await again.exportPrivatePem('a'), a.privateKey);
    assert.equal(await again.exportPrivatePem('b'), exportPrivatePem(createPrivateKey(b.privateKey)));
    assert.equal(again.exportPublicPem('a'), a.publicKey);
    assert.equal(again.exportPublicPem('c'), pubOnly.publicKey);

    await assert.rejects(again.importPem('a', b.publicKey), (e) => code(e) === 'key_exists', 'name taken');
    await assert.rejects(again.importPem('a2', a.publicKey), (e) => code(e) === 'key_exists', 'key already present');
    await assert.rejects(again.importPem('bad name', a.publicKey), (e) => code(e) === 'bad_request');
    await assert.rejects(again.importPem('junk', 'not a key'), (e) => code(e) === 'bad_key');
    const encrypted = createPrivateKey(a.privateKey)
      .export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'x' })
      .toString();
    await assert.rejects(again.importPem('enc', encrypted), (e) => code(e) === 'bad_key');
  });

  test('the passphrase is asked once per keyring, only when a secret is touched, with confirmation when set', async () => {
    const home = tempDir('p2pdb-keyring-');
    const first = recordingSource();
    const kr = await Keyring.open({ home, passphrase: first.source });
    await kr.importPem('contact', (await generateRsaKeyPair()).publicKey);
    assert.equal(first.calls.length, 0, 'a public key needs no passphrase');
    assert.equal(kr.hasPassphrase, false);
    await kr.generate('me');
    await kr.generate('table');
    await kr.privateKey('me');
    assert.equal(first.calls.length, 1);
    assert.equal(first.calls[0]!.confirm, true, 'setting a passphrase asks for confirmation');

    const second = recordingSource();
    const kr2 = await Keyring.open({ home, passphrase: second.source });
    await kr2.privateKey('me');
    await kr2.privateKey('table');
    assert.deepEqual(second.calls.map((c) => c.confirm), [false]);
  });

  test('a sealed private key moved to another entry fails authentication', async () => {
    const home = tempDir('p2pdb-keyring-');
    const kr = await Keyring.open({ home, passphrase: recordingSource().source });
    await kr.generate('one');
    await kr.generate('two');
    const file = path.join(home, KEYRING_FILE);
    const doc = JSON.parse(readFileSync(file, 'utf8'));
    [doc.keys[0].private_key, doc.keys[1].private_key] = [doc.keys[1].private_key, doc.keys[0].private_key];
    writeFileSync(file, JSON.stringify(doc));
    const swapped = await Keyring.open({ home, passphrase: recordingSource().source });
    await assert.rejects(swapped.privateKey('one'), (e) => code(e) === 'malformed');
  });

  test('a keyring demanding absurd scrypt memory is refused before deriving anything', async () => {
    const home = tempDir('p2pdb-keyring-');
    const kr = await Keyring.open({ home, passphrase: recordingSource().source });
    await kr.init();
    const file = path.join(home, KEYRING_FILE);
    const doc = JSON.parse(readFileSync(file, 'utf8'));
    doc.kdf.N = 2 ** 30;
    writeFileSync(file, JSON.stringify(doc));
    await assert.rejects(Keyring.open({ home, passphrase: refuse }), (e) => code(e) === 'malformed');
  });

  test('remove deletes the key and keeps the others', async () => {
    const home = tempDir('p2pdb-keyring-');
    const kr = await Keyring.open({ home, passphrase: recordingSource().source });
    const one = await kr.generate('one');
    await kr.generate('two');
    const removed = await kr.remove(one.fingerprint.slice(0, 8));
    assert.equal(removed.name, 'one');
    const again = await Keyring.open({ home, passphrase: recordingSource().source });
    assert.deepEqual(again.list().map((k) => k.name), ['two']);
    assert.equal((await again.privateKey('two')).type, 'private');
    assert.ok(!readFileSync(path.join(home, KEYRING_FILE), 'utf8').includes(one.fingerprint));
  });

  test('home defaults to ~/.p2pdb and follows P2PDB_HOME', () => {
    assert.equal(defaultHome({}, '/home/u'), '/home/u/.p2pdb');
    assert.equal(defaultHome({ P2PDB_HOME: '/srv/k' }, '/home/u'), '/srv/k');
  });
});

describe('passphrase source', () => {
  const request = { purpose: 'passphrase for the keyring', confirm: false };

  test('takes P2PDB_PASSPHRASE', async () => {
    const source = passphraseSource({ env: { P2PDB_PASSPHRASE: 'from env' }, input: new PassThrough(), output: new PassThrough() });
    assert.equal(await source(request), 'from env');
  });

  test('without the variable and without a terminal it is keyring_locked, not an empty passphrase', async () => {
    const source = passphraseSource({ env: {}, input: new PassThrough(), output: new PassThrough() });
    await assert.rejects(source(request), (e) => code(e) === 'keyring_locked' && /P2PDB_PASSPHRASE/.test((e as Error).message));
  });
});

describe('keyring across processes', () => {
  test('six `p2pdb keys new` at once on one keyring: every key is kept and its private key opens', async () => {
    const home = path.join(tempDir('p2pdb-keyring-procs-'), 'home');
    const env = { P2PDB_HOME: home, P2PDB_PASSPHRASE: PASS, HOME: home };
    const init = await runCli(['keys', 'new', 'first'], { env });
    assert.equal(init.code, 0, init.stderr);
    // Each process reads the keyring, then spends ~0.5 s on scrypt and key generation before it
    // writes: without the lock and the re-read, later writers drop earlier writers' keys.
    const names = ['k1', 'k2', 'k3', 'k4', 'k5', 'k6'];
    const runs = await Promise.all(names.map((n) => runCli(['keys', 'new', n], { env })));
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    const kr = await Keyring.open({ home, passphrase: recordingSource().source });
    assert.deepEqual(kr.list().map((k) => k.name).sort(), ['first', ...names]);
    for (const n of names) assert.equal((await kr.privateKey(n)).asymmetricKeyType, 'rsa');
    assert.deepEqual(readdirSync(home).sort(), [KEYRING_FILE], 'no lock or temp file left');
  });

  test('two processes setting a first passphrase at once: one wins, the other is told to run again, nothing is lost', async () => {
    const home = path.join(tempDir('p2pdb-keyring-race-'), 'home');
    const a = await Keyring.open({ home, passphrase: recordingSource('passphrase A').source });
    const b = await Keyring.open({ home, passphrase: recordingSource('passphrase B').source });
    await a.generate('from-a');
    await assert.rejects(b.generate('from-b'), (e: unknown) => code(e) === 'busy');
    const again = await Keyring.open({ home, passphrase: recordingSource('passphrase A').source });
    assert.deepEqual(again.list().map((k) => k.name), ['from-a']);
    assert.equal((await again.privateKey('from-a')).asymmetricKeyType, 'rsa');
  });

  test('a name taken by another process meanwhile is refused, not duplicated', async () => {
    const home = path.join(tempDir('p2pdb-keyring-name-'), 'home');
    const a = await Keyring.open({ home, passphrase: recordingSource().source });
    await a.init();
    const b = await Keyring.open({ home, passphrase: recordingSource().source });
    await a.generate('same');
    await assert.rejects(b.generate('same'), (e: unknown) => code(e) === 'key_exists' && /a key named same/.test((e as Error).message));
    const again = await Keyring.open({ home, passphrase: refuse });
    assert.deepEqual(again.list().map((k) => k.name), ['same']);
  });
});

describe('file lock', () => {
  test('a lock left by a dead process is taken over; a live one makes the next writer wait, then busy', async () => {
    const dir = tempDir('p2pdb-lock-');
    const file = path.join(dir, 'x.lock');
    // A pid that cannot be running: the largest pid_max is 2^22.
    writeFileSync(file, String(2 ** 22 + 1));
    assert.equal(await withFileLock(file, async () => readFileSync(file, 'utf8')), String(process.pid));
    assert.throws(() => statSync(file), /ENOENT/);

    let inside = 0;
    let most = 0;
    await Promise.all(
      [1, 2, 3, 4].map(() =>
        withFileLock(file, async () => {
          most = Math.max(most, ++inside);
          await new Promise((r) => setTimeout(r, 5));
          inside--;
        }),
      ),
    );
    assert.equal(most, 1, 'one holder at a time');

    writeFileSync(file, String(process.pid)); // held by a live process (this one)
    await assert.rejects(withFileLock(file, async () => 'never', { waitMs: 100 }), (e: unknown) => code(e) === 'busy');
    assert.equal(await withFileLock(file, async () => 'taken', { waitMs: 100, staleMs: 0 }), 'taken', 'an old lock is stale whoever holds it');
  });
});
