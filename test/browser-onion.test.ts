/**
 * The browser app over Tor: chromium, its SOCKS proxy set to a client tor of the private test
 * network, opens a pairing link to a node's onion address, reads and writes there. Plain
 * Chromium does not treat http://x.onion as a secure context, so this is also the real case
 * for the node-forge backend (no crypto.subtle, not a simulation).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { resolveConfig } from '../src/config/config.js';
import { openEntry, verifyStoredEntry } from '../src/client/read.js';
import { pairingLink } from '../src/client/pairing.js';
import { startNode, type RunningNode } from '../src/node/node.js';
import { peerAgent } from '../src/tor/socks.js';
import { waitFor } from '../src/tor/wait.js';
import type { ClientTor } from '../src/tor/testnet.js';
import { createLogger } from '../src/util/log.js';
import { assertNoLeaks, chromiumMissing, openBrowser, secretForms, type BrowserSession } from './helpers/browser.js';
import { getJson, makeEntry, postJson, testKey } from './helpers/entries.js';
import { useTestnet, waitForOnionAnswer } from './helpers/testnet.js';
import { tempDir } from './helpers/tmp.js';

const missing = chromiumMissing();
const testnet = useTestnet();
const PASSPHRASE = 'correct horse battery staple';
const logs: string[] = [];
let node: RunningNode | undefined;
let visitor: ClientTor | undefined;
let session: BrowserSession | undefined;

before(async () => {
  if (missing) return;
  const net = await testnet;
  node = await startNode(
    resolveConfig({ dataDir: tempDir('p2pdb-browser-onion-'), port: 0, powBits: 12, tor: 'managed', torExtraLines: net.networkTorrcLines() }),
    { log: createLogger((line) => logs.push(line), 'debug') },
  );
  visitor = await net.startClientTor('browser');
  await waitFor(() => node!.onion!.state().published, { timeoutMs: 120_000, what: 'onion published' });
});

after(async () => {
  await session?.close();
  await node?.close();
});

const fp = (der: Buffer) => createHash('sha256').update(der).digest('hex');

describe('browser app over Tor (chromium through SOCKS)', { skip: missing ?? false }, () => {
  test('a pairing link to the onion address imports the keys, reads the table and writes to it (node-forge: .onion is not a secure context here)', async () => {
    const onion = node!.onion!.address;
    const origin = `http://${onion}`;
    // The onion answers through the visitor's tor before chromium tries (descriptor propagation).
    await waitForOnionAnswer(`${origin}/hello/`, peerAgent(visitor!.socksPort), 180_000);

    const table = testKey();
    const reader = testKey();
    const earlier = await makeEntry({ table, to: reader, text: 'waiting in the onion node' });
    assert.equal((await postJson(`${node!.url}/put/${earlier.idHex}`, earlier.json)).status, 201);

    session = await openBrowser({
      args: [
        `--proxy-server=socks5://127.0.0.1:${visitor!.socksPort}`,
        // Every name goes to the proxy; nothing is resolved locally.
        '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1',
      ],
    });
    const s = session;
    const link = pairingLink(origin, { table: table.privateKey.export({ format: 'jwk' }), recipient: reader.privateKey.export({ format: 'jwk' }), label: 'over tor' });
    const res = await s.page.goto(link, { timeout: 180_000 });
    assert.equal(res?.status(), 200);
    await s.page.waitForSelector('body[data-ready="1"]', { timeout: 120_000 });
    assert.equal(s.page.url(), `${origin}/`, 'the fragment left the address bar');
    assert.equal(await s.page.evaluate('isSecureContext'), false);
    assert.equal(await s.page.getAttribute('body', 'data-backend'), 'forge');
    // The app asks /hello/ after it is ready; over Tor that answer takes a moment.
    await waitFor(async () => ((await s.page.textContent('#node-info')) ?? '').includes(onion), { timeoutMs: 120_000, what: 'for the onion address in the page' });

    await s.page.fill('#passphrase', PASSPHRASE);
    await s.page.click('#unlock-btn');
    await s.page.waitForSelector('#keys-panel', { state: 'visible', timeout: 120_000 });
    await waitFor(async () => (await s.page.locator('#key-list li').count()) === 2, { timeoutMs: 30_000, what: 'for both paired keys' });

    const message = (id: string) => s.page.locator(`#messages li[data-id="${id}"]`);
    const opened = async (id: string) =>
      waitFor(async (note) => {
        const li = message(id);
        if ((await li.count()) === 0) return note('not listed'), undefined;
        const state = await li.getAttribute('data-state');
        if (state === 'error') throw new Error(`cannot open ${id}: ${await li.locator('.text').textContent()}`);
        return state === 'ok' ? await li.locator('.text').textContent() : undefined;
      }, { timeoutMs: 120_000, what: `for ${id} in the page` });
    assert.equal(await opened(earlier.idHex), 'waiting in the onion node');

    const tableFp = fp(table.publicKey.export({ type: 'spki', format: 'der' }));
    const readerFp = fp(reader.publicKey.export({ type: 'spki', format: 'der' }));
    await s.page.selectOption('#write-table', tableFp);
    await s.page.selectOption('#write-to', readerFp);
    await s.page.fill('#write-text', 'written over tor');
    await s.page.click('#send-btn');
    const id = await waitFor(async (note) => {
      const text = (await s.page.textContent('#write-status')) ?? '';
      note(text);
      if (text.startsWith('not sent')) throw new Error(text);
      return (await s.page.getAttribute('#write-status', 'data-id')) ?? undefined;
    }, { timeoutMs: 180_000, what: 'for the page to store its entry over Tor' });
    assert.equal(await opened(id), 'written over tor', 'the entry came back live over the onion');

    const stored = await getJson(`${node!.url}/get/?ids=${id}`);
    const checked = verifyStoredEntry(stored.body.entries[0], { minPowBits: 12 });
    assert.equal(openEntry(checked.entry, reader.privateKey).toString('utf8'), 'written over tor');

    assertNoLeaks({
      session: s,
      origin,
      secrets: [secretForms(table.privateKey, 'the paired table key'), secretForms(reader.privateKey, 'the paired reader key')],
      dataDir: node!.config.dataDir,
      logs,
    });
  });
});
