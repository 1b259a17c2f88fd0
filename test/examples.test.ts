/** examples/guestbook run as a user runs it (compiled, child processes) against a real node. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, it } from 'node:test';
import type { RunningNode } from '../src/node/node.js';
import { waitFor } from '../src/tor/wait.js';
import { cleanEnv, runScript } from './helpers/cli.js';
import { startTestNode } from './helpers/node.js';

const GUESTBOOK = fileURLToPath(new URL('../examples/guestbook/guestbook.js', import.meta.url));
let node: RunningNode;

before(async () => {
  node = await startTestNode({ powBits: 8 });
});
after(async () => {
  await node.close();
});

it('the guestbook signs, reads and follows entries through the library', async () => {
  const sign = await runScript(GUESTBOOK, ['--node', node.url, 'sign', 'Ann', 'first!']);
  assert.equal(sign.code, 0, sign.stderr);
  assert.match(sign.stdout, /^stored [0-9a-f]{64}$/m);
  const read = await runScript(GUESTBOOK, ['--node', node.url, 'read']);
  assert.equal(read.code, 0, read.stderr);
  assert.match(read.stdout, /"Ann": "first!"/);

  const child = spawn(process.execPath, [GUESTBOOK, '--node', node.url, 'follow'], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  try {
    await waitFor(() => out.includes('first!'), { timeoutMs: 30_000, intervalMs: 20, what: `the replayed entry (stderr: ${err})` });
    const second = await runScript(GUESTBOOK, ['--node', node.url, 'sign', 'Bo', 'live one']);
    assert.equal(second.code, 0, second.stderr);
    await waitFor(() => out.includes('"Bo": "live one"'), { timeoutMs: 30_000, intervalMs: 20, what: `the live entry (stderr: ${err})` });
  } finally {
    child.kill('SIGTERM');
  }
  assert.equal(await exited, 0);
  assert.equal(out.split('first!').length - 1, 1, 'no repeats');
});

it('the package an app installs (npm pack) holds the built client, its types, the browser app and the CLI, and no tests or caches', async () => {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  // --ignore-scripts: the prepack build already ran for the tests (dist/ is what is packed).
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn(npm, ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (c: Buffer) => (text += c.toString()));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`npm pack exited with ${code}`))));
  });
  const files = new Set((JSON.parse(out) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path));
  for (const needed of ['dist/src/client/index.js', 'src/client/index.ts', 'dist/src/client/browser.js', 'dist/src/cli/main.js', 'scripts/p2pdb.mjs', 'torrc.template', 'dist/web/app.js']) {
    assert.ok(files.has(needed), `${needed} is in the package`);
  }
  const stray = [...files].filter((f) => f.startsWith('dist/test/') || f.startsWith('test/') || f.includes('.bench-cache') || f.startsWith('node_modules/'));
  assert.deepEqual(stray, []);
});
