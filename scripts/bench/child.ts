/**
 * Servers for HTTP benchmarks, each in its own process so the load generator does not share
 * its event loop: `node child.js node DATA_DIR POW_BITS [DATABASE]` runs a p2pdb node,
 * `node child.js bare-koa` a bare Koa POST handler with a JSON body parser (the baseline).
 * Prints {"url": ...} once listening.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

export interface ChildServer {
  url: string;
  stop(): Promise<void>;
}

export function spawnChild(args: string[]): Promise<ChildServer> {
  const child: ChildProcess = spawn(process.execPath, [fileURLToPath(import.meta.url), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (c: Buffer) => {
      buf += c.toString();
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      const { url } = JSON.parse(buf.slice(0, nl)) as { url: string };
      resolve({
        url,
        stop: async () => {
          child.kill('SIGTERM');
          await exited;
        },
      });
    });
    child.once('exit', (code) => reject(new Error(`benchmark server exited with ${code}`)));
  });
}

async function main(): Promise<void> {
  const [mode, dataDir, bits, database] = process.argv.slice(2);
  if (mode === 'node') {
    const { resolveConfig } = await import('../../src/config/config.js');
    const { startNode } = await import('../../src/node/node.js');
    const { silentLogger } = await import('../../src/util/log.js');
    const node = await startNode(resolveConfig({ dataDir, port: 0, powBits: Number(bits), maxBatchEntries: 5000, ...(database ? { database } : {}) }), {
      log: silentLogger,
      ...(process.env.BENCH_VERIFY_THREADS ? { verifyThreads: Number(process.env.BENCH_VERIFY_THREADS) } : {}),
    });
    process.on('SIGTERM', () => void node.close().then(() => process.exit(0)));
    process.stdout.write(JSON.stringify({ url: node.url }) + '\n');
  } else if (mode === 'sync-server') {
    const { runSyncServer } = await import('./sync-server.js');
    await runSyncServer(dataDir!);
  } else if (mode === 'bare-koa') {
    const { default: Koa } = await import('koa');
    const { default: getRawBody } = await import('raw-body');
    const app = new Koa();
    app.use(async (ctx) => {
      const raw = await getRawBody(ctx.req, { limit: 1 << 20 });
      const parsed = JSON.parse(raw.toString('utf8')) as unknown;
      ctx.status = 201;
      ctx.body = { ok: parsed !== null };
    });
    const server = createServer(app.callback());
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      process.stdout.write(JSON.stringify({ url: `http://127.0.0.1:${port}` }) + '\n');
    });
    process.on('SIGTERM', () => server.close(() => process.exit(0)));
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
