import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const script = fileURLToPath(new URL('./run-node.js', import.meta.url));

export interface NodeProcess {
  url: string;
  child: ChildProcess;
  /** Resolves when the process has exited. */
  exited: Promise<void>;
}

/** Starts a node in a child process and resolves once it reports its URL; `database` as --database (default SQLite in dataDir). */
export function spawnNode(dataDir: string, powBits = 12, database?: string): Promise<NodeProcess> {
  const child = spawn(process.execPath, [script, dataDir, String(powBits), ...(database ? [database] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buf += chunk.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) resolve({ url: (JSON.parse(buf.slice(0, nl)) as { url: string }).url, child, exited });
    });
    child.once('exit', (code) => reject(new Error(`node process exited early with code ${code}`)));
  });
}
