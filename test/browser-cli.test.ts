/**
 * The browser app and the p2pdb CLI on one loopback node, as a user runs them: `p2pdb pair`
 * prints a link from the CLI keyring, the link opened in a fresh chromium profile imports the
 * keys, a message written in the page shows up in `p2pdb get --follow`, and one put by
 * `p2pdb put` shows up live in the page. The latency of each direction is printed as one JSON
 * line (measured, not asserted: timing assertions would be flaky on a loaded machine).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { resolveConfig } from '../src/config/config.js';
import { startNode } from '../src/node/node.js';
import { waitFor } from '../src/tor/wait.js';
import { createLogger } from '../src/util/log.js';
import { assertNoLeaks, chromiumMissing, openBrowser, recordingProxy, secretForms, type BrowserSession } from './helpers/browser.js';
import { CLI_MAIN, cleanEnv, runCli } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';

const missing = chromiumMissing();
const PASS = 'browser and cli passphrase';
const cleanups: (() => Promise<unknown> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => undefined);
});

describe('browser app with the p2pdb CLI', { skip: missing ?? false }, () => {
  test('pair from the CLI; page → get --follow and p2pdb put → page, live', async () => {
    const logs: string[] = [];
    const node = await startNode(resolveConfig({ dataDir: tempDir('p2pdb-browser-cli-'), port: 0, powBits: 12 }), { log: createLogger((l) => logs.push(l), 'debug') });
    const proxy = await recordingProxy(node.port);
    cleanups.push(() => node.close(), () => proxy.close());
    const home = tempDir('p2pdb-browser-cli-home-');
    const env = { P2PDB_HOME: home, P2PDB_PASSPHRASE: PASS, P2PDB_NODE: node.url, HOME: home };
    for (const name of ['board', 'alice']) {
      const r = await runCli(['keys', 'new', name], { env });
      assert.equal(r.code, 0, r.stderr);
    }

    // p2pdb get --follow, as a user leaves it running.
    const child: ChildProcess = spawn(process.execPath, [CLI_MAIN, 'get', '--follow', '--recipient', 'alice'], { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    cleanups.push(() => void child.kill("SIGKILL"));
    let out = '';
    let err = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    await waitFor(() => err.includes('following'), { timeoutMs: 30_000, intervalMs: 20, what: `for get --follow to start: ${err}` });

    const pair = await runCli(['pair', '--table', 'board', '--recipient', 'alice', '--label', 'board', '--url', `${proxy.origin}/`, '--no-qr'], { env });
    assert.equal(pair.code, 0, pair.stderr);
    const link = pair.stdout.trim().split('\n')[0]!;
    assert.match(link, /^http:\/\/127\.0\.0\.1:\d+\/#pair=1&t=/);

    const s: BrowserSession = await openBrowser();
    cleanups.push(() => s.close());
    await s.page.goto(link);
    await s.page.waitForSelector('body[data-ready="1"]', { timeout: 30_000 });
    assert.equal(s.page.url(), `${proxy.origin}/`);
    await s.page.fill('#passphrase', 'a browser passphrase');
    await s.page.click('#unlock-btn');
    await waitFor(async () => (await s.page.locator('#key-list li').count()) === 2, { timeoutMs: 30_000, what: 'for the paired keys' });

    // Page → CLI.
    const fps = await s.page.locator('#key-list li').evaluateAll((lis) => lis.map((li) => [li.textContent ?? '', (li as unknown as { dataset: { fp: string } }).dataset.fp]));
    const fpOf = (label: string) => fps.find(([text]) => text!.startsWith(label))![1]!;
    await s.page.selectOption('#write-table', fpOf('board (table)'));
    await s.page.selectOption('#write-to', fpOf('board (reader)'));
    // Twice: the first entry also pays for get --follow unlocking its key (scrypt), the second does not.
    const toFollowMs: number[] = [];
    for (const text of ['from the browser to the terminal', 'again from the browser']) {
      await s.page.fill('#write-text', text);
      const stored = s.page.waitForResponse((r) => r.url().includes('/put/') && r.status() === 201, { timeout: 60_000 });
      await s.page.click('#send-btn');
      await stored;
      const putAt = Date.now();
      await waitFor(() => out.includes(text), { timeoutMs: 30_000, intervalMs: 5, what: `in get --follow\nstdout: ${out}\nstderr: ${err}` });
      toFollowMs.push(Date.now() - putAt);
    }
    assert.match(out, /board -> alice: from the browser to the terminal/);

    // CLI → page.
    const put = await runCli(['put', '--table', 'board', '--to', 'alice', 'from the terminal to the browser'], { env });
    assert.equal(put.code, 0, put.stderr);
    const cliDoneAt = Date.now();
    await s.page.locator('#messages li[data-state="ok"] .text', { hasText: 'from the terminal to the browser' }).waitFor({ timeout: 30_000 });
    const toPageMs = Date.now() - cliDoneAt;
    process.stdout.write(JSON.stringify({ measure: 'live_latency_loopback_ms', browser_to_get_follow_first: toFollowMs[0], browser_to_get_follow_next: toFollowMs[1], p2pdb_put_to_browser: toPageMs }) + '\n');

    const secrets = [];
    for (const name of ['board', 'alice']) {
      const pem = await runCli(['keys', 'export', name, '--private'], { env });
      assert.equal(pem.code, 0, pem.stderr);
      secrets.push(secretForms(createPrivateKey(pem.stdout), `keyring key ${name}`));
    }
    assertNoLeaks({ session: s, origin: proxy.origin, secrets, dataDir: node.config.dataDir, logs, sent: proxy.sent() });
    assert.deepEqual(s.problems, []);
  });
});
