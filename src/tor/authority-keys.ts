/**
 * Key material for a private-network directory authority, made the way Tor's own test networks
 * do: tor-gencert for the v3 authority identity/signing keys and certificate, and
 * `tor --list-fingerprint` for the relay identity (written into the authority's DataDirectory so
 * the authority later starts with that same key).
 */
import { spawn } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { P2pdbError, fail } from '../errors.js';

export interface AuthorityKeys {
  /** Fingerprint of the v3 authority identity key (the DirAuthority v3ident=). */
  v3ident: string;
  /** Relay identity fingerprint (the last field of the DirAuthority line). */
  fingerprint: string;
}

export async function makeAuthorityKeys(dataDir: string, dirPort: number, orPort: number, torBinary = 'tor'): Promise<AuthorityKeys> {
  const keys = path.join(dataDir, 'keys');
  await mkdir(keys, { recursive: true, mode: 0o700 });
  // An empty line on stdin is the empty passphrase for the identity key.
  await run(
    'tor-gencert',
    [
      '--create-identity-key', '--passphrase-fd', '0', '-m', '12', '-a', `127.0.0.1:${dirPort}`,
      '-i', path.join(keys, 'authority_identity_key'),
      '-s', path.join(keys, 'authority_signing_key'),
      '-c', path.join(keys, 'authority_certificate'),
    ],
    keys,
    '\n',
  );
  const cert = await readFile(path.join(keys, 'authority_certificate'), 'utf8');
  const v3ident = /^fingerprint ([0-9A-F]{40})$/m.exec(cert)?.[1];
  if (!v3ident) fail('tor_process', 'tor-gencert wrote a certificate without a fingerprint');

  // --list-fingerprint needs some non-default DirAuthority to accept a private ORPort; a dummy will do.
  await run(
    torBinary,
    [
      '--ignore-missing-torrc', '-f', '/dev/null', '--DataDirectory', dataDir, '--ORPort', `127.0.0.1:${orPort}`,
      '--DirAuthority', `dummy 127.0.0.1:1 ${'f'.repeat(40)}`, '--list-fingerprint',
    ],
    dataDir,
    '',
  );
  const fingerprint = /\s([0-9A-F]{40})\s*$/.exec(await readFile(path.join(dataDir, 'fingerprint'), 'utf8'))?.[1];
  if (!fingerprint) fail('tor_process', `tor --list-fingerprint wrote no fingerprint in ${dataDir}`);
  return { v3ident, fingerprint };
}

function run(cmd: string, args: string[], cwd: string, stdin: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.once('error', (err) => reject(new P2pdbError('tor_process', `${cmd}: ${err.message}`)));
    child.once('close', (code) => {
      if (code === 0) resolve();
      else reject(new P2pdbError('tor_process', `${cmd} exited with ${code}:\n${output.slice(-2000)}`));
    });
    child.stdin.end(stdin);
  });
}
