// What `p2pdb serve` shows its operator (issue 12 item 7): the plain view and the summariser of
// tor's repeated warnings as pure functions, then real `serve` runs with a managed tor whose only
// way out is a bridge on a closed loopback port (so it cannot connect, and no traffic leaves
// 127.0.0.1), in the plain and the JSON format.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { P2pdbError } from '../src/errors.js';
import { torLogLine } from '../src/node/tor-runtime.js';
import { waitFor } from '../src/tor/wait.js';
import { createLogger } from '../src/util/log.js';
import {
  BRIDGE_ADVICE,
  chooseLogFormat,
  newPlainState,
  plainLines,
  RepeatSummariser,
  torText,
  warningKey,
  type LogEntry,
} from '../src/util/operator-output.js';
import { closedPort, spawnServe } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';

const T0 = Date.parse('2026-12-03T12:00:00Z');
const entry = (msg: string, fields: Record<string, unknown> = {}, level: LogEntry['level'] = 'info', t = T0): LogEntry => ({ t, level, msg, fields });
/** A tor warning as spawnTor hands it on; `n` changes the way tor's own counts do. */
const refused = (n: number, port = 4444) =>
  `[tor] Dec 03 18:36:${String(n % 60).padStart(2, '0')}.000 [warn] Problem bootstrapping. Stuck at 5% (conn): Connecting to a relay. (Connection refused; CONNECTREFUSED; count ${n}; recommendation warn; host ${'0'.repeat(40)} at 127.0.0.1:${port})`;

describe('log format choice', () => {
  test('plain on a terminal, JSON otherwise; the flag, then the environment, win', () => {
    assert.equal(chooseLogFormat(undefined, undefined, true), 'plain');
    assert.equal(chooseLogFormat(undefined, undefined, false), 'json');
    assert.equal(chooseLogFormat(undefined, '', false), 'json');
    assert.equal(chooseLogFormat(undefined, 'plain', false), 'plain');
    assert.equal(chooseLogFormat('json', 'plain', true), 'json');
    assert.throws(() => chooseLogFormat('text', undefined, true), (e: unknown) => e instanceof P2pdbError && e.code === 'config_invalid');
  });
});

describe('plain lines', () => {
  test("Tor's ~20 bootstrap phases become a handful of lines; starting over is shown", () => {
    const state = newPlainState();
    const phases = [0, 5, 10, 14, 15, 25, 30, 40, 45, 50, 55, 60, 65, 68, 70, 75, 80, 85, 89, 90, 95, 100];
    const shown = phases.flatMap((p) => plainLines(entry('tor bootstrap', { progress: p, summary: `phase ${p}` }), state));
    assert.deepEqual(
      shown.map((l) => l.slice(9)),
      [
        'Tor: connecting to the Tor network, 0% (phase 0)',
        'Tor: connecting to the Tor network, 25% (phase 25)',
        'Tor: connecting to the Tor network, 50% (phase 50)',
        'Tor: connecting to the Tor network, 75% (phase 75)',
        'Tor: connected to the Tor network (100%)',
      ],
    );
    assert.match(shown[0]!, /^\d{2}:\d{2}:\d{2} /, 'each line starts with the local time');
    // tor restarted: progress starts over and is shown again.
    assert.equal(plainLines(entry('tor bootstrap', { progress: 0, summary: 'starting' }), state).length, 1);
  });

  test('no network: the problem each time, the advice (bridges) once per outage', () => {
    const state = newPlainState();
    const first = plainLines(entry('tor cannot reach the Tor network', { detail: 'Connection refused' }, 'warn'), state);
    assert.match(first[0]!, /Tor cannot reach the Tor network: Connection refused$/);
    assert.deepEqual(first.slice(1), BRIDGE_ADVICE);
    assert.ok(first.some((l) => /bridges\.torproject\.org/.test(l) && /obfs4/.test(l)));
    assert.ok(first.some((l) => /UseBridges 1/.test(l)));
    assert.equal(plainLines(entry('tor cannot reach the Tor network', { detail: 'again' }, 'warn'), state).length, 1, 'the advice only once');
    plainLines(entry('tor bootstrap', { progress: 100, summary: 'Done' }), state);
    assert.equal(plainLines(entry('tor cannot reach the Tor network', { detail: 'a new outage' }, 'warn'), state).length, 1 + BRIDGE_ADVICE.length);
  });

  test('published, the address, the defences; tor bootstrap noise and debug lines stay out', () => {
    const state = newPlainState();
    const address = 'a'.repeat(56) + '.onion';
    assert.match(plainLines(entry('onion service published', { address }), state)[0]!, new RegExp(`Published: .*http://${address}/`));
    assert.match(plainLines(entry('onion service added', { address, mode: 'managed' }), state)[0]!, new RegExp(`Onion address ${address}`));
    assert.match(plainLines(entry('onion service DoS defences', { tor_version: '0.4.9.11', defences: ['proof of work on', 'x'] }), state)[0]!, /DoS defences \(tor 0\.4\.9\.11\): proof of work on; x$/);
    assert.deepEqual(plainLines(entry('tor says', { line: refused(3) }, 'warn'), state), [], 'said in words by the node instead');
    assert.deepEqual(plainLines(entry('tor repeated a warning', { line: refused(3), repeats: 9, within_s: 60 }, 'warn'), state), []);
    const clockSkew = '[tor] Dec 03 18:36:42.000 [warn] Our clock is 2 hours behind the time published in the consensus';
    assert.match(plainLines(entry('tor says', { line: clockSkew }, 'warn'), state)[0]!, / tor: Our clock is 2 hours behind/);
    assert.match(plainLines(entry('tor repeated a warning', { line: clockSkew, repeats: 4, within_s: 60 }, 'warn'), state)[0]!, / tor: 4 more like this in 60 s: Our clock/);
    assert.deepEqual(plainLines(entry('tor says', { line: 'x' }, 'debug'), state), []);
    assert.match(plainLines(entry('peering round failed', { message: 'boom', nested: { a: 1 } }, 'warn'), state)[0]!, /warning: peering round failed \(message boom\)$/);
  });

  test("tor's timestamp and prefix are dropped; counts, ports and relays do not make a warning new", () => {
    assert.match(torText(refused(7)), /^Problem bootstrapping\./);
    assert.equal(warningKey(refused(1, 1111)), warningKey(refused(22, 2222)));
    assert.notEqual(warningKey(refused(1)), warningKey('[tor] Dec 03 18:36:42.000 [warn] 1 connections have failed:'));
  });
});

describe("summarising tor's repeated warnings", () => {
  test('34 warnings of 3 kinds in 90 s: each kind forwarded once a minute, the rest counted', () => {
    const s = new RepeatSummariser(60_000);
    const forwarded: string[] = [];
    const summaries: { line: string; repeats: number }[] = [];
    const kinds = [(n: number) => refused(n), (n: number) => `[tor] Dec 03 18:36:00.000 [warn] ${n} connections have failed:`, (n: number) => `[tor] Dec 03 18:36:00.000 [warn]  ${n} connections died in state connect()ing with SSL state (No SSL object)`];
    for (let i = 0; i < 34; i++) {
      const now = T0 + Math.round((i * 90_000) / 34);
      const r = s.push(kinds[i % 3]!(i + 1), now);
      if (r.forward) forwarded.push(r.forward);
      summaries.push(...r.summaries);
    }
    summaries.push(...s.flush(T0 + 90_000, true));
    // First minute: 3 forwarded; then each kind's summary, and each kind forwarded once more.
    assert.equal(forwarded.length, 6, forwarded.join('\n'));
    assert.equal(summaries.length, 6);
    assert.equal(forwarded.length + summaries.reduce((n, x) => n + x.repeats, 0), 34, 'every warning is either forwarded or counted');
    assert.ok(forwarded.length + summaries.length <= 12, 'a dozen lines, not 34');
  });

  test('a window with no repeats ends silently; flush(all) reports what is still open', () => {
    const s = new RepeatSummariser(1_000);
    assert.equal(s.push('a 1', 0).forward, 'a 1');
    assert.deepEqual(s.push('b 1', 5_000).summaries, [], 'no repeats, no summary');
    assert.equal(s.push('a 2', 5_001).forward, 'a 2', 'its window over, a kind is forwarded again');
    assert.equal(s.push('a 3', 5_002).forward, undefined);
    assert.deepEqual(s.flush(5_003, true), [{ line: 'a 2', repeats: 1, withinMs: 2 }]);
  });

  test("torLogLine: tor's warnings reach the JSON log summarised; notices stay at debug", () => {
    const lines: string[] = [];
    const tor = torLogLine(createLogger((l) => lines.push(l), 'info'), 60_000);
    for (let i = 1; i <= 20; i++) tor.onLine(refused(i));
    tor.onLine('[tor] Dec 03 18:36:00.000 [notice] Bootstrapped 5% (conn): Connecting to a relay');
    tor.flush(true);
    const parsed = lines.map((l) => JSON.parse(l) as { msg: string; repeats?: number; line?: string });
    assert.deepEqual(
      parsed.map((p) => p.msg),
      ['tor says', 'tor repeated a warning'],
    );
    assert.equal(parsed[1]!.repeats, 19);
  });
});

describe('p2pdb serve with no reachable Tor network', () => {
  async function serveWithoutNetwork(args: string[]) {
    const dataDir = tempDir('p2pdb-operator-');
    // The only way out tor is given: a bridge on a loopback port where nothing listens.
    writeFileSync(path.join(dataDir, 'config.json'), JSON.stringify({ torExtraLines: ['UseBridges 1', `Bridge 127.0.0.1:${await closedPort()}`] }));
    const serve = await spawnServe(['--data', dataDir, '--port', '0', '--pow-bits', '12', '--tor', 'managed', ...args], {}, 60_000);
    const torWarnings = () => readFileSync(path.join(dataDir, 'tor', 'tor.log'), 'utf8').split('\n').filter((l) => /\[warn\]/.test(l)).length;
    return { serve, torWarnings };
  }

  test('plain: a few lines that say what is happening and what to try, while tor warns again and again', async (t) => {
    const { serve, torWarnings } = await serveWithoutNetwork(['--log-format', 'plain']);
    try {
      await waitFor(() => /Tor cannot reach the Tor network/.test(serve.stderr()), { timeoutMs: 90_000, what: 'the no-network line' });
      // Let tor repeat itself: at least 10 warnings in its own log (it retries the bridge every few seconds).
      await waitFor(() => torWarnings() >= 10, { timeoutMs: 120_000, intervalMs: 500, what: 'tor to warn 10 times' });
      const lines = serve.stderr().split('\n').filter((l) => l !== '');
      assert.ok(lines.every((l) => !l.startsWith('{')), `no JSON lines:\n${lines.join('\n')}`);
      assert.ok(lines.some((l) => /Tor: connecting to the Tor network, \d+%/.test(l)), lines.join('\n'));
      assert.ok(lines.some((l) => /Onion address [a-z2-7]{56}\.onion/.test(l)));
      assert.ok(lines.some((l) => /DoS defences \(tor 0\.4\./.test(l)));
      assert.ok(lines.some((l) => /bridges\.torproject\.org/.test(l)), 'points to bridges');
      assert.ok(!lines.some((l) => /Problem bootstrapping/.test(l)), "tor's own bootstrap complaints are not forwarded");
      assert.ok(lines.length <= 20, `${lines.length} lines for ${torWarnings()} tor warnings:\n${lines.join('\n')}`);
      t.diagnostic(`${lines.length} plain lines (${BRIDGE_ADVICE.length} of them advice) while tor logged ${torWarnings()} warnings`);
    } finally {
      assert.equal(await serve.stop(), 0);
    }
  });

  test('without a terminal (and no flag) the log is JSON lines', async () => {
    const { serve } = await serveWithoutNetwork([]);
    try {
      await waitFor(() => /"msg":"onion service DoS defences"/.test(serve.stderr()), { timeoutMs: 60_000, what: 'the defences line' });
      const lines = serve.stderr().split('\n').filter((l) => l !== '');
      for (const l of lines) assert.doesNotThrow(() => JSON.parse(l), l);
    } finally {
      assert.equal(await serve.stop(), 0);
    }
  });
});
