/** `p2pdb init`: a node data directory with a default config.json, and the client keyring. */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../util/atomic-file.js';
import { DEFAULT_CONFIG, loadConfig, type NodeConfig } from '../config/config.js';
import { flag, expectPositionals, openKeyring, parse, println, nodeDataDir, str, type Command } from './context.js';

const USAGE = `usage: p2pdb init [--data DIR]

Creates the node's data directory with a config.json of defaults (unless one exists)
and the client keyring in $P2PDB_HOME (default ~/.p2pdb), asking for its passphrase
(or taking $P2PDB_PASSPHRASE), unless it exists. Never overwrites anything.

options:
  --data DIR   node data directory (default: $P2PDB_DATA or ./data)
  -h, --help   show this help`;

/** The defaults as a file: everything but dataDir, which is where the file lives. */
export function defaultConfigFile(): Omit<NodeConfig, 'dataDir'> {
  const { dataDir: _omit, ...rest } = DEFAULT_CONFIG;
  return rest;
}

export const initCommand: Command = {
  name: 'init',
  summary: 'create the node data directory (config.json) and the keyring',
  usage: USAGE,
  async run(args, io) {
    const p = parse('init', args, { data: { type: 'string' } });
    if (flag(p, 'help')) {
      println(io.stdout, USAGE);
      return 0;
    }
    expectPositionals('init', p, 0, 0, 'no positional arguments');
    const dataDir = nodeDataDir(io, str(p, 'data'));
    const configFile = path.join(dataDir, 'config.json');

    if (existsSync(dataDir)) println(io.stdout, `data directory ${dataDir} exists`);
    else {
      await mkdir(dataDir, { recursive: true, mode: 0o700 });
      println(io.stdout, `created data directory ${dataDir}`);
    }
    if (existsSync(configFile)) {
      // Read it through the real loader so a broken file is reported now, not at serve time.
      loadConfig({ flags: { dataDir }, env: {} });
      println(io.stdout, `${configFile} exists, left as it is`);
    } else {
      await writeFileAtomic(configFile, JSON.stringify(defaultConfigFile(), null, 2) + '\n', 0o644);
      println(io.stdout, `wrote ${configFile} with the default settings`);
    }

    const keyring = await openKeyring(io);
    const existed = keyring.exists;
    if (await keyring.init()) println(io.stdout, existed ? `set the passphrase of keyring ${keyring.file}` : `created keyring ${keyring.file} (passphrase set)`);
    else println(io.stdout, `keyring ${keyring.file} exists, left as it is`);
    println(io.stdout, `next: p2pdb keys new NAME, then p2pdb serve --data ${dataDir}`);
    return 0;
  },
};
