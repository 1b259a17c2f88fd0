/**
 * `p2pdb sync PEER`: asks the running local node to sync with PEER now and shows progress until
 * it is done. The node is reached on its local control listener (127.0.0.1, bearer token), both
 * read from DATA/status.json: the public port is the onion service and has no admin routes.
 */
import { P2pdbError, fail, type ErrorCode } from '../errors.js';
import { readNodeStatus } from '../node/status-file.js';
import type { SyncProgress, SyncReport } from '../sync/session.js';
import { expectPositionals, flag, parse, println, str, nodeDataDir, type CliIo, type Command } from './context.js';

const USAGE = `usage: p2pdb sync PEER [--data DIR]

Asks the running node to sync with PEER (a verified peer's onion address) now, and shows a
progress bar (entries fetched, verified and stored, rate, ETA) until it is done. Every entry
is verified by the node exactly as a put is.

options:
  --data DIR   the node's data directory (default: $P2PDB_DATA or ./data); the node writes
               its local control address and token to DIR/status.json
  -h, --help   show this help`;

type Line = ({ type: 'progress' } & SyncProgress) | ({ type: 'report' } & SyncReport) | { type: 'error'; code: string; message: string };

function seconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  return s < 120 ? `${Math.ceil(s)} s` : `${Math.ceil(s / 60)} min`;
}

/** One line of progress: bar, counts, rate, ETA. Pure. */
export function progressLine(p: SyncProgress, elapsedMs: number, width = 24): string {
  const done = p.stored + p.duplicates + p.rejected;
  const fraction = p.total > 0 ? Math.min(1, done / p.total) : p.phase === 'done' ? 1 : 0;
  const filled = Math.round(fraction * width);
  const rate = elapsedMs > 0 ? (p.fetched * 1000) / elapsedMs : 0;
  const eta = rate > 0 && p.total > done ? (p.total - done) / rate : p.total > done ? Infinity : 0;
  return (
    `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${String(Math.round(fraction * 100)).padStart(3)}% ` +
    `${p.phase.padEnd(9)} fetched ${p.fetched}/${p.total}  verified+stored ${p.stored}  dup ${p.duplicates}  rejected ${p.rejected}  ` +
    `pushed ${p.pushed}  ${rate.toFixed(0)} entries/s  ETA ${seconds(eta)}`
  );
}

export const syncCommand: Command = {
  name: 'sync',
  summary: 'sync the running node with a peer now, with a progress bar',
  usage: USAGE,
  async run(args, io) {
    const p = parse('sync', args, { data: { type: 'string' } });
    if (flag(p, 'help')) {
      println(io.stdout, USAGE);
      return 0;
    }
    const [peer] = expectPositionals('sync', p, 1, 1, 'one PEER (an onion address)');
    const dataDir = nodeDataDir(io, str(p, 'data'));
    const status = readNodeStatus(dataDir);
    const control = status?.control ?? fail('node_unreachable', `no running node with Tor found in ${dataDir} (no control address in status.json)`);
    let res: Response;
    try {
      res = await io.fetch(`${control.url}/control/sync`, {
        method: 'POST',
        headers: { authorization: `Bearer ${control.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ peer: peer! }),
      });
    } catch (e) {
      fail('node_unreachable', `the node's control listener at ${control.url} did not answer: ${(e as Error).message}`);
    }
    if (res.status !== 200 || !res.body) {
      const body = (await res.json().catch(() => null)) as { error?: { code?: string; message?: string } } | null;
      throw new P2pdbError((body?.error?.code as ErrorCode) ?? 'internal', body?.error?.message ?? `control answered ${res.status}`);
    }
    const started = Date.now();
    const tty = io.stdout.isTTY === true;
    let lastPrinted = 0;
    let buffered = '';
    let final: Line | undefined;
    const decoder = new TextDecoder();
    const show = (prog: SyncProgress, force: boolean) => {
      const now = Date.now();
      // A terminal gets one redrawn line; a pipe or file a line at most every second (and the last).
      if (!force && !tty && now - lastPrinted < 1000) return;
      lastPrinted = now;
      const text = progressLine(prog, now - started);
      if (tty) io.stdout.write(`\r${text}\x1b[K`);
      else println(io.stdout, text);
    };
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffered += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const text = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (text.trim() === '') continue;
        const line = JSON.parse(text) as Line;
        if (line.type === 'progress') show(line, false);
        else final = line;
      }
    }
    if (!final) fail('node_unreachable', 'the node ended the sync without a result');
    if (final.type === 'error') {
      if (tty) io.stdout.write('\n');
      throw new P2pdbError(final.code as ErrorCode, final.message);
    }
    if (final.type === 'report') {
      show(final, true);
      if (tty) io.stdout.write('\n');
      const o = final.offences;
      const offences = o.invalid + o.wrongTable + o.unsolicited + o.lyingCount + o.malformed;
      println(
        io.stdout,
        `synced with ${final.peer}: ${final.stored} stored, ${final.duplicates} already here, ${final.rejected} rejected, ${final.pushed} pushed; ` +
          `${final.roundTrips} round trips, ${final.bytesSent} B sent, ${final.bytesReceived} B received in reconciliation; ${final.durationMs} ms` +
          (final.resumed > 0 ? `; resumed ${final.resumed} interrupted range pull(s)` : '') +
          (offences > 0 ? `; the peer misbehaved (${JSON.stringify(o)}) and was penalised` : ''),
      );
    }
    return 0;
  },
};
