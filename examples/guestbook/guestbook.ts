#!/usr/bin/env node
/**
 * A guestbook with p2pdb as its backend: one public channel whose key pair is part of the app,
 * so every copy of the app can sign (write) and decrypt (read) guestbook entries. The node
 * stores only ciphertext and cannot tell a guestbook entry from any other.
 *
 *   node dist/examples/guestbook/guestbook.js sign "NAME" "MESSAGE"   write an entry
 *   node dist/examples/guestbook/guestbook.js read                    print the guestbook
 *   node dist/examples/guestbook/guestbook.js follow                  print it, then live
 *
 * Options: --node URL (default $P2PDB_NODE or http://127.0.0.1:8733); --socks PORT to reach an
 * onion URL through tor's SOCKS port (e.g. --node http://….onion --socks 9050).
 */
import { parseArgs } from 'node:util';
import { P2pdbClient, P2pdbError, importPrivateKey, socksAgent, type VerifiedEntry } from 'p2pdb';
import { GUESTBOOK_KEY_PEM } from './channel-key.js';

// The channel key is both the table (who may write) and the recipient (who may read): anyone
// with the app is both. A private guestbook would use separate keys and share only the public one.
const channel = importPrivateKey(GUESTBOOK_KEY_PEM);

interface Signature {
  name: string;
  message: string;
}

function parseEntry(client: P2pdbClient, e: VerifiedEntry): Signature | undefined {
  try {
    const body = JSON.parse(client.open(e, channel.privateKey).toString('utf8')) as Partial<Signature>;
    if (typeof body.name === 'string' && typeof body.message === 'string') return { name: body.name, message: body.message };
  } catch {
    /* not a guestbook entry: someone else wrote to this key; skip it */
  }
  return undefined;
}

function show(client: P2pdbClient, e: VerifiedEntry): void {
  const s = parseEntry(client, e);
  // JSON.stringify keeps control characters in names and messages from reaching the terminal raw.
  if (s) console.log(`${new Date(e.entry.createdAt).toISOString()}  ${JSON.stringify(s.name)}: ${JSON.stringify(s.message)}`);
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    options: { node: { type: 'string' }, socks: { type: 'string' } },
    allowPositionals: true,
  });
  const url = values.node ?? process.env.P2PDB_NODE ?? 'http://127.0.0.1:8733';
  const agent = values.socks ? socksAgent(Number(values.socks)) : undefined;
  const client = new P2pdbClient(url, agent ? { agent } : {});
  const [command, ...rest] = positionals;
  try {
    if (command === 'sign' && rest.length === 2) {
      const [name, message] = rest as [string, string];
      const result = await client.put({
        table: channel.privateKey,
        to: channel.publicKey,
        data: JSON.stringify({ name, message }),
        onProgress: (p) => process.stderr.write(`\rproof of work: ${p.tokensDone}/${p.tokens}`),
      });
      process.stderr.write('\n');
      console.log(`${result.status} ${result.id}`);
    } else if (command === 'read') {
      for await (const e of client.get({ tables: [channel.fingerprint], after: '0' })) show(client, e);
    } else if (command === 'follow') {
      const stop = new AbortController();
      process.once('SIGINT', () => stop.abort());
      process.once('SIGTERM', () => stop.abort());
      console.error(`following the guestbook on ${client.url} (Ctrl-C to stop)`);
      for await (const e of client.subscribe({ tables: [channel.fingerprint] }, { after: '0', signal: stop.signal })) show(client, e);
    } else {
      console.error('usage: guestbook sign NAME MESSAGE | read | follow  [--node URL] [--socks PORT]');
      return 2;
    }
    return 0;
  } catch (e) {
    if (e instanceof P2pdbError) {
      console.error(`error [${e.code}]: ${e.message}`);
      return 1;
    }
    throw e;
  } finally {
    await client.close();
    agent?.destroy();
  }
}

process.exitCode = await main();
