/**
 * Smoke test of a running node, after the seed's test_server.py: makes a table key and a
 * recipient key in memory, posts one message, reads it back through /get/?seconds_since=10000,
 * verifies and decrypts it, and prints the id and the message.
 *
 *   node dist/scripts/test-server.js [--node URL] [--message TEXT]
 */
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { DEFAULT_NODE_URL, NodeApi } from '../src/client/node-api.js';
import { openEntry, verifyStoredEntry } from '../src/client/read.js';
import { createEntry } from '../src/client/write.js';
import { generateRsaKeyPair, parsePrivateKey } from '../src/crypto/keys.js';
import { P2pdbError } from '../src/errors.js';
import { MintPool } from '../src/pow/mint-pool.js';

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { node: { type: 'string' }, message: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
  });
  if (values.help) {
    process.stdout.write('usage: test-server [--node URL] [--message TEXT]\n');
    return 0;
  }
  const api = new NodeApi(values.node ?? (process.env.P2PDB_NODE || DEFAULT_NODE_URL));
  const message = values.message ?? `hello from test-server at ${new Date().toISOString()}`;

  const hello = await api.hello();
  const [table, recipient] = await Promise.all([generateRsaKeyPair(), generateRsaKeyPair()]);
  const tableKey = parsePrivateKey(table.privateKey);
  const recipientKey = parsePrivateKey(recipient.privateKey);

  const pool = new MintPool({ threads: availableParallelism() });
  let created;
  try {
    created = await createEntry({
      tablePrivateKey: tableKey.key,
      recipientPublicKey: recipientKey.publicKey.key,
      plaintext: Buffer.from(message, 'utf8'),
      powBits: hello.pow_bits,
      mint: (id, bits) => pool.mint(id, bits),
    });
  } finally {
    await pool.close();
  }
  const put = await api.put(created.entry);
  process.stdout.write(`id ${put.id} (${put.status})\n`);

  const recipientFp = recipientKey.publicKey.fingerprint.toString('hex');
  for await (const json of api.getAll({ secondsSince: 10000, recipients: [recipientFp] })) {
    if (json.id !== put.id) continue;
    const v = verifyStoredEntry(json);
    const text = openEntry(v.entry, recipientKey.key).toString('utf8');
    process.stdout.write(`message ${text}\n`);
    return text === message ? 0 : 1;
  }
  process.stderr.write(`error: entry ${put.id} was not returned by /get/?seconds_since=10000\n`);
  return 1;
}

try {
  process.exitCode = await main();
} catch (e) {
  if (e instanceof P2pdbError) process.stderr.write(`error [${e.code}]: ${e.message}\n`);
  else process.stderr.write(`error: ${(e as Error)?.stack ?? String(e)}\n`);
  process.exitCode = 1;
}
