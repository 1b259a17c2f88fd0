/**
 * Running `tor` as a child process: its output goes to DIR/tor.log (and an optional log
 * callback), a crash is reported with the last lines it printed, and every tor still running
 * when this Node process exits is killed (torrcs also set __OwningControllerProcess, so tor
 * quits on its own even if Node is killed with SIGKILL).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { P2pdbError, fail } from '../errors.js';
import { TorControl } from './control.js';
import { waitFor } from './wait.js';

export interface TorProcessOptions {
  name: string;
  torrcPath: string;
  /** tor.log is written here. */
  dir: string;
  log?: (line: string) => void;
  /** Defaults to `tor` on PATH (Debian's). */
  torBinary?: string;
}

export interface TorProcess {
  readonly name: string;
  readonly pid: number;
  readonly exited: Promise<number | null>;
  isRunning(): boolean;
  /** The last lines tor printed, for error messages. */
  logTail(): string;
  /** SIGTERM, then SIGKILL if tor has not exited after 10 s. */
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

export function spawnTor(opts: TorProcessOptions): TorProcess {
  installExitHook();
  const child = spawn(opts.torBinary ?? 'tor', ['-f', opts.torrcPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid === undefined) {
    // spawn reports a missing binary as an 'error' event on the next tick; with no listener it
    // would crash the process after we have already thrown the typed error below.
    child.once('error', () => undefined);
    fail('tor_process', `could not start ${opts.torBinary ?? 'tor'} for ${opts.name}`);
  }
  live.add(child);
  const tail: string[] = [];
  const file = createWriteStream(path.join(opts.dir, 'tor.log'), { flags: 'a' });
  const onLine = (line: string) => {
    tail.push(line);
    if (tail.length > 30) tail.shift();
    file.write(line + '\n');
    opts.log?.(`[${opts.name}] ${line}`);
  };
  createInterface({ input: child.stdout! }).on('line', onLine);
  createInterface({ input: child.stderr! }).on('line', onLine);
  let running = true;
  const exited = new Promise<number | null>((resolve) => {
    child.once('error', (err) => onLine(`spawn error: ${err.message}`));
    child.once('close', (code) => {
      running = false;
      live.delete(child);
      file.end();
      resolve(code);
    });
  });
  return {
    name: opts.name,
    pid: child.pid,
    exited,
    isRunning: () => running,
    logTail: () => tail.join('\n'),
    async stop() {
      if (!running) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * Connects to a freshly started tor's control port once it listens; fails fast with its log if
 * tor exits first.
 */
export async function waitForControl(proc: TorProcess, port: number, timeoutMs = 30_000): Promise<TorControl> {
  return waitFor(
    async (note) => {
      if (!proc.isRunning()) {
        const tail = proc.logTail();
        // Another process bound one of the ports between our probe and tor's bind: retryable.
        const clash = /Could not bind to .*Address already in use/.test(tail);
        fail(clash ? 'tor_port_in_use' : 'tor_process', `tor ${proc.name} exited before its control port opened:\n${tail}`);
      }
      let control: TorControl;
      try {
        control = await TorControl.connect({ port, timeoutMs: 5_000 });
      } catch (err) {
        if (err instanceof P2pdbError && (err.code === 'tor_control' || err.code === 'tor_timeout')) {
          note(err.message);
          return undefined;
        }
        throw err;
      }
      // The port may belong to another tor that bound it between our probe and this tor's bind.
      const pid = await control.getInfo('process/pid').catch(() => '');
      if (pid.trim() !== String(proc.pid)) {
        control.close();
        await proc.stop();
        fail('tor_port_in_use', `control port ${port} answered for tor pid ${pid || '?'}, not ${proc.name} (pid ${proc.pid})`);
      }
      return control;
    },
    { timeoutMs, intervalMs: 50, what: `waiting for tor ${proc.name}'s control port ${port}` },
  );
}
