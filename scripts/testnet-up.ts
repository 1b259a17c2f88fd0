// Starts p2pdb's private Tor network and keeps it running until SIGTERM/SIGINT, so one network
// serves a whole test run (test/helpers/testnet.ts attaches to it through P2PDB_TESTNET).
//
//   node dist/scripts/testnet-up.js <description.json> [--relays N] [--stop-on-stdin-close]
//
// Once the network is usable it writes the description file (atomically) and prints one line
// `P2PDB_TESTNET=<absolute path>` on stdout; wait for either before starting tests. On SIGTERM
// or SIGINT it stops every tor and removes the file. --stop-on-stdin-close also stops it when
// stdin closes (spawn it with stdin 'pipe' so it cannot outlive its parent). P2PDB_TOR_LOG=1
// copies the tors' logs to stderr.
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { startTestnet, writeTestnetDescription, type Testnet } from '../src/tor/testnet.js';

function usage(message: string): never {
  process.stderr.write(`testnet-up: ${message}\nusage: testnet-up <description.json> [--relays N] [--stop-on-stdin-close]\n`);
  process.exit(2);
}

const args = process.argv.slice(2);
let file: string | undefined;
let relays: number | undefined;
let stopOnStdinClose = false;
for (let i = 0; i < args.length; i++) {
  const arg = args[i]!;
  if (arg === '--relays') relays = Number(args[++i]);
  else if (arg === '--stop-on-stdin-close') stopOnStdinClose = true;
  else if (!arg.startsWith('--') && file === undefined) file = path.resolve(arg);
  else usage(`unexpected argument ${arg}`);
}
if (!file) usage('missing description file');
if (relays !== undefined && !(Number.isInteger(relays) && relays >= 4)) usage('--relays needs a number >= 4');
const descriptionFile = file;

let net: Testnet | undefined;
let stopping: Promise<void> | undefined;
function stop(code: number): Promise<void> {
  stopping ??= (async () => {
    await rm(descriptionFile, { force: true });
    await net?.stop();
    process.exit(code);
  })();
  return stopping;
}
process.on('SIGTERM', () => void stop(0));
process.on('SIGINT', () => void stop(0));
if (stopOnStdinClose) {
  process.stdin.on('end', () => void stop(0));
  process.stdin.resume();
}

const started = Date.now();
try {
  const log = process.env.P2PDB_TOR_LOG ? (line: string) => process.stderr.write(line + '\n') : undefined;
  net = await startTestnet({ ...(relays !== undefined ? { relays } : {}), ...(log ? { log } : {}) });
  if (stopping) await stopping;
  await writeTestnetDescription(descriptionFile, net.describe());
  process.stderr.write(`testnet-up: network usable after ${Date.now() - started} ms (${net.dir})\n`);
  process.stdout.write(`P2PDB_TESTNET=${descriptionFile}\n`);
} catch (err) {
  process.stderr.write(`testnet-up: ${err instanceof Error ? err.message : String(err)}\n`);
  await stop(1);
}
