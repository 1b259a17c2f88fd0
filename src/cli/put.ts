/** `p2pdb put`: write one message to a table, encrypted to a recipient. */
import { availableParallelism } from 'node:os';
import { createEntry } from '../client/write.js';
import { fail } from '../errors.js';
import { MintPool } from '../pow/mint-pool.js';
import {
  COMMON_CLIENT_HELP,
  NODE_OPTION,
  UsageError,
  expectPositionals,
  flag,
  nodeApi,
  openKeyring,
  parse,
  println,
  readAll,
  str,
  type CliIo,
  type Command,
  type OutStream,
} from './context.js';

const USAGE = `usage: p2pdb put --table T --to R MESSAGE
       p2pdb put --table T --to R -        (the message is read from stdin as is, bytes and
                                            all: \`echo\` adds a newline, \`printf %s\` does not)

Encrypts MESSAGE to R, signs it with the table key T, mints the proof of work the node
asks for (on all cores) and posts it. Prints the status and the entry id.

options:
  --table T    a key in the keyring whose private key we hold (name or fingerprint)
  --to R       the recipient: a key in the keyring, its public key is enough
${COMMON_CLIENT_HELP}`;

/** Envelope bytes around the plaintext: header, RSA-wrapped key, IV and tag (see crypto/envelope.ts). */
function envelopeOverhead(recipientBits: number): number {
  return 3 + Math.ceil(recipientBits / 8) + 12 + 16;
}

/** A progress line that rewrites itself; only on a terminal, where \r means something. */
function progressLine(out: OutStream, bits: number) {
  let shown = false;
  return {
    update(p: { tokensDone: number; tokens: number; hashes: number }) {
      shown = true;
      out.write(`\rminting proof of work (${bits} bits): ${p.tokensDone}/${p.tokens} tokens, ${(p.hashes / 1e6).toFixed(1)}M hashes `);
    },
    clear() {
      if (shown) out.write('\r\x1b[K');
    },
  };
}

export const putCommand: Command = {
  name: 'put',
  summary: 'encrypt a message to a recipient and write it to a table',
  usage: USAGE,
  async run(args: string[], io: CliIo): Promise<number> {
    const p = parse('put', args, { ...NODE_OPTION, table: { type: 'string' }, to: { type: 'string' } });
    if (flag(p, 'help')) {
      println(io.stdout, USAGE);
      return 0;
    }
    const tableRef = str(p, 'table');
    const toRef = str(p, 'to');
    if (!tableRef || !toRef) throw new UsageError('--table and --to are required', 'put');
    const [message] = expectPositionals('put', p, 1, 1, "one MESSAGE (or '-' to read it from stdin)");
    const plaintext = message === '-' ? await readAll(io.stdin) : Buffer.from(message!, 'utf8');
    if (plaintext.length === 0) throw new UsageError('the message is empty', 'put');

    // Everything that can fail cheaply is checked before the passphrase and before minting.
    const keyring = await openKeyring(io);
    const table = keyring.resolve(tableRef);
    if (!table.hasPrivate) fail('key_not_found', `cannot write to table ${table.name}: the keyring has only its public key`);
    const recipient = keyring.resolve(toRef);
    const api = nodeApi(io, p);
    const hello = await api.hello();
    if (hello.tables !== '*' && !hello.tables.includes(table.fingerprint)) {
      fail('table_not_allowed', `the node at ${api.baseUrl} does not mirror table ${table.name} (${table.fingerprint})`);
    }
    const payloadBytes = plaintext.length + envelopeOverhead(recipient.bits);
    if (payloadBytes > hello.limits.max_payload_bytes) {
      fail('payload_too_large', `the encrypted message would be ${payloadBytes} bytes, the node takes at most ${hello.limits.max_payload_bytes}`);
    }
    const tablePrivateKey = await keyring.privateKey(table.name);

    const pool = new MintPool({ threads: availableParallelism() });
    const progress = io.stderr.isTTY ? progressLine(io.stderr, hello.pow_bits) : undefined;
    let created;
    try {
      created = await createEntry({
        tablePrivateKey,
        recipientPublicKey: recipient.publicKey,
        plaintext,
        powBits: hello.pow_bits,
        mint: (id, bits) => pool.mint(id, bits, progress ? { onProgress: (x) => progress.update(x) } : {}),
      });
    } finally {
      progress?.clear();
      await pool.close();
    }
    const result = await api.put(created.entry);
    println(io.stdout, `${result.status} ${result.id}`);
    return 0;
  },
};
