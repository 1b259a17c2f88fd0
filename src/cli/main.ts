#!/usr/bin/env node
/**
 * The p2pdb command line. `run` takes its world as arguments (see CliIo); when this file is the
 * program itself it runs with the real process.
 */
import { realpathSync } from 'node:fs';
import { homedir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { P2pdbError } from '../errors.js';
import { VERSION } from '../node/version.js';
import { UsageError, println, type CliIo, type Command } from './context.js';
import { clientsCommand } from './clients.js';
import { dbCommand } from './db.js';
import { getCommand } from './get.js';
import { initCommand } from './init.js';
import { keysCommand } from './keys.js';
import { pairCommand } from './pair.js';
import { peersCommand } from './peers.js';
import { putCommand } from './put.js';
import { serveCommand } from './serve.js';
import { statusCommand } from './status.js';
import { syncCommand } from './sync.js';

const COMMANDS: Command[] = [initCommand, serveCommand, keysCommand, putCommand, getCommand, statusCommand, peersCommand, pairCommand, clientsCommand, syncCommand, dbCommand];

function mainUsage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return `p2pdb ${VERSION}: a Tor-first peer-to-peer database node and its client

usage: p2pdb COMMAND [options]

commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

Run 'p2pdb COMMAND --help' for a command's options.
Exit codes: 0 ok, 1 operational error, 2 usage error.`;
}

export function processIo(): CliIo {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    homedir: homedir(),
    fetch: globalThis.fetch,
    stopSignal: () =>
      new Promise((resolve) => {
        const on = (signal: NodeJS.Signals) => {
          process.off('SIGINT', on);
          process.off('SIGTERM', on);
          resolve(signal);
        };
        process.on('SIGINT', on);
        process.on('SIGTERM', on);
      }),
  };
}

/** What to try next, for the errors a new user meets first. */
export function hintFor(e: P2pdbError): string | undefined {
  if (e.code === 'node_unreachable' && /cannot reach the node at https?:\/\/(127\.|localhost|\[::1\])/.test(e.message)) {
    return "is the node running? Start it with 'npm start' in the p2pdb checkout (or 'p2pdb serve'), or name another with --node URL";
  }
  if (e.code === 'node_unreachable' && /cannot reach the node at https?:\/\/[a-z2-7]{56}\.onion/.test(e.message)) {
    return "is your tor running at --socks, and has the node published its onion service ('p2pdb status' on its machine)?";
  }
  return undefined;
}

export async function run(argv: string[], io: CliIo = processIo()): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    const topic = name === 'help' ? COMMANDS.find((c) => c.name === rest[0]) : undefined;
    println(topic || name !== undefined ? io.stdout : io.stderr, topic ? topic.usage : mainUsage());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-V') {
    println(io.stdout, `p2pdb ${VERSION}`);
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  try {
    if (!command) throw new UsageError(`unknown command ${JSON.stringify(name)}`, '');
    return await command.run(rest, io);
  } catch (e) {
    if (e instanceof UsageError) {
      println(io.stderr, `usage error: ${e.message}`);
      println(io.stderr, `see: p2pdb ${e.command ? `${e.command} ` : ''}--help`);
      return 2;
    }
    if (e instanceof P2pdbError) {
      println(io.stderr, `error [${e.code}]: ${e.message}`);
      const hint = hintFor(e);
      if (hint) println(io.stderr, `hint: ${hint}`);
      return 1;
    }
    const err = e as Error;
    println(io.stderr, `error [internal]: ${err?.message ?? String(e)}`);
    if (io.env.P2PDB_DEBUG) println(io.stderr, err?.stack ?? '');
    return 1;
  }
}

function isMainModule(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMainModule()) {
  process.exitCode = await run(process.argv.slice(2));
}
