// A Tor node in its own process for the interrupted-bootstrap test. argv: a JSON object
// { config: ConfigInput, pageLimit?: number, killAtFetched?: number }. Prints JSON lines:
// {"ready": {url, onion, torPid}} once it runs, {"outcome": SyncOutcome} after each
// sync session, and {"killing": fetched} right before it SIGKILLs itself in the middle of a range
// pull (after the page that reached killAtFetched was committed and its cursor saved).
import { resolveConfig, type ConfigInput } from '../../src/config/config.js';
import { startNode } from '../../src/node/node.js';
import { silentLogger } from '../../src/util/log.js';

const args = JSON.parse(process.argv[2]!) as { config: ConfigInput; pageLimit?: number; killAtFetched?: number };
const print = (o: unknown) => process.stdout.write(JSON.stringify(o) + '\n');

const node = await startNode(resolveConfig(args.config), {
  log: silentLogger,
  ...(args.pageLimit ? { sync: { tuning: { pageLimit: args.pageLimit } } } : {}),
});
node.sync!.service.onOutcome((o) => print({ outcome: o }));
if (args.killAtFetched !== undefined) {
  const at = args.killAtFetched;
  node.sync!.service.onProgress((p) => {
    if (p.phase === 'range' && p.fetched >= at) {
      print({ killing: p.fetched });
      process.kill(process.pid, 'SIGKILL');
    }
  });
}
// Said at once: the sync (and the kill) may come before the node's own onion is published.
print({ ready: { url: node.url, onion: node.onion!.address, torPid: node.onion!.state().torPid } });
process.on('SIGTERM', () => void node.close().then(() => process.exit(0)));
