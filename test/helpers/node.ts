import { resolveConfig, type ConfigInput } from '../../src/config/config.js';
import { startNode, type RunningNode } from '../../src/node/node.js';
import { silentLogger } from '../../src/util/log.js';
import { nodeDatabaseSetting } from './backend.js';
import { tempDir } from './tmp.js';

/** A real node on an ephemeral loopback port with a fresh database of the backend under test. */
export async function startTestNode(overrides: ConfigInput = {}): Promise<RunningNode> {
  const database = overrides.database ?? (await nodeDatabaseSetting());
  const config = resolveConfig({ dataDir: tempDir('p2pdb-node-'), port: 0, powBits: 12, ...(database ? { database } : {}), ...overrides });
  return startNode(config, { log: silentLogger });
}
