// A node in its own process, for tests that kill it: prints {"url": ...} once it listens.
import { resolveConfig } from '../../src/config/config.js';
import { startNode } from '../../src/node/node.js';
import { silentLogger } from '../../src/util/log.js';

const [dataDir, powBits, database] = process.argv.slice(2);
const node = await startNode(resolveConfig({ dataDir, port: 0, powBits: Number(powBits ?? 12), ...(database ? { database } : {}) }), { log: silentLogger });
process.stdout.write(JSON.stringify({ url: node.url }) + '\n');
process.on('SIGTERM', () => void node.close().then(() => process.exit(0)));
