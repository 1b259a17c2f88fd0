// Runs every compiled test file with node's test runner, in one run. Files are listed
// explicitly so the set is the same on every Node version; extra arguments select files by
// substring. When a selected file uses the private Tor network (useTestnet), one network is
// started for the whole run, beside the tests that don't need it: those files wait for its
// description file (P2PDB_TESTNET), or fail with the reason written next to it.
import { readdirSync, readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';

const dir = path.resolve('dist/test');
const filters = process.argv.slice(2);
const files = readdirSync(dir, { recursive: true })
  .map(String)
  .filter((f) => f.endsWith('.test.js'))
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort()
  .map((f) => path.join(dir, f));
if (files.length === 0) {
  console.error('no test files found in dist/test');
  process.exit(1);
}

const env = { ...process.env };
let testnet;
let scratch;
const needsTor = files.some((f) => readFileSync(f, 'utf8').includes('useTestnet('));
if (needsTor && !process.env.P2PDB_TESTNET) {
  scratch = mkdtempSync(path.join(tmpdir(), 'p2pdb-run-'));
  const description = path.join(scratch, 'testnet.json');
  env.P2PDB_TESTNET = description;
  testnet = spawn(process.execPath, ['dist/scripts/testnet-up.js', description, '--stop-on-stdin-close'], {
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  let errText = '';
  testnet.stderr.on('data', (c) => {
    errText += c;
    process.stderr.write(c);
  });
  testnet.once('exit', (code) => {
    if (code !== 0 && code !== null) writeFileSync(description + '.error', `testnet-up exited with ${code}: ${errText.slice(-2000)}`);
  });
}

const runner = spawn(process.execPath, ['--test', '--test-reporter=spec', '--test-timeout=600000', ...files], { stdio: 'inherit', env });
const code = await new Promise((resolve) => runner.once('exit', (c) => resolve(c ?? 1)));
if (testnet) {
  const exited = new Promise((resolve) => testnet.once('exit', resolve));
  testnet.kill('SIGTERM');
  testnet.stdin.end();
  await exited;
}
if (scratch) rmSync(scratch, { recursive: true, force: true });
process.exit(code);
