// Runs every compiled test file with node's test runner, in one run. Files are listed
// explicitly so the set is the same on every Node version; extra arguments select files by
// substring. When a selected file uses the private Tor network (useTestnet), one network is
// started for the whole run, beside the tests that don't need it: those files wait for its
// description file (P2PDB_TESTNET), or fail with the reason written next to it.
// Likewise, when a selected file uses PostgreSQL (usePostgres), one throwaway server is started
// (about 1.5 s) before the tests and stopped after them, pass or fail; its URL reaches the test
// processes in P2PDB_TEST_POSTGRES, or the reason it did not start in P2PDB_TEST_POSTGRES_ERROR.
import { readdirSync, readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

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

let postgres;
const needsPostgres = files.some((f) => readFileSync(f, 'utf8').includes('usePostgres('));
if (needsPostgres && !process.env.P2PDB_TEST_POSTGRES) {
  try {
    const { startLocalPostgres } = await import(pathToFileURL(path.resolve('dist/src/store/postgres/local-server.js')).href);
    // fsync off: nothing kills this server; tests that crash one use a private server.
    postgres = await startLocalPostgres({ fsync: false });
    env.P2PDB_TEST_POSTGRES = postgres.url;
  } catch (err) {
    // The files that need it fail with this reason; the others still run.
    console.error(`run-tests: the shared PostgreSQL server did not start: ${err?.message ?? err}`);
    env.P2PDB_TEST_POSTGRES_ERROR = JSON.stringify({ code: err?.code, message: String(err?.message ?? err) });
  }
}

let code = 1;
try {
  const runner = spawn(process.execPath, ['--test', '--test-reporter=spec', '--test-timeout=600000', ...files], { stdio: 'inherit', env });
  code = await new Promise((resolve) => {
    runner.once('error', (err) => {
      console.error(`run-tests: could not start the test runner: ${err.message}`);
      resolve(1);
    });
    runner.once('exit', (c) => resolve(c ?? 1));
  });
} finally {
  await postgres?.stop().catch((err) => console.error(`run-tests: stopping the shared PostgreSQL server: ${err.message}`));
}
if (testnet) {
  const exited = new Promise((resolve) => testnet.once('exit', resolve));
  testnet.kill('SIGTERM');
  testnet.stdin.end();
  await exited;
}
if (scratch) rmSync(scratch, { recursive: true, force: true });
process.exit(code);
