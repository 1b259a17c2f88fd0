/** Running the compiled CLI (and other scripts) as child processes, the way a user does. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

/** dist/test/helpers → dist/src/cli/main.js and dist/scripts. */
export const CLI_MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
export const TEST_SERVER_SCRIPT = fileURLToPath(new URL('../../scripts/test-server.js', import.meta.url));

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: Record<string, string | undefined>;
  input?: string | Buffer;
  timeoutMs?: number;
}

/** The parent's environment without any P2PDB_* setting, so tests never see the developer's own. */
export function cleanEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('P2PDB_')) env[k] = v;
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

export function runScript(script: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { env: cleanEnv(opts.env), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${script} ${args.join(' ')} did not finish in ${opts.timeoutMs ?? 120_000} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, opts.timeoutMs ?? 120_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

export function runCli(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return runScript(CLI_MAIN, args, opts);
}

export interface ServeProcess {
  url: string;
  child: ChildProcess;
  /** Everything the process printed on stdout so far. */
  stdout(): string;
  /** Sends SIGTERM and resolves with the exit code. */
  stop(): Promise<number | null>;
  /** Everything printed on stderr so far. */
  stderr(): string;
  /**
   * What Ctrl-C in a terminal does: SIGINT to the whole process group, so a managed tor gets
   * it too (spawn with `interruptible`). Resolves with the exit code.
   */
  interrupt(): Promise<number | null>;
}

/** `p2pdb serve` in a child process; resolves once it prints the URL it listens on. */
export function spawnServe(args: string[], env: Record<string, string | undefined> = {}, timeoutMs = 30_000, opts: { interruptible?: boolean } = {}): Promise<ServeProcess> {
  // interruptible: a process group of its own (detached), like a shell's foreground job.
  const child = spawn(process.execPath, [CLI_MAIN, 'serve', ...args], { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'], detached: opts.interruptible === true });
  let out = '';
  let err = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`serve printed no URL within ${timeoutMs} ms\nstdout: ${out}\nstderr: ${err}`));
    }, timeoutMs);
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({
          url: m[1]!,
          child,
          stdout: () => out,
          stderr: () => err,
          stop: () => {
            child.kill('SIGTERM');
            return exited;
          },
          interrupt: () => {
            if (!opts.interruptible) throw new Error('spawnServe: interrupt() needs { interruptible: true }');
            process.kill(-child.pid!, 'SIGINT');
            return exited;
          },
        });
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited with ${code} before listening\nstdout: ${out}\nstderr: ${err}`));
    });
  });
}

/** A loopback port with nothing listening on it (taken from the OS, then released). */
export function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}
