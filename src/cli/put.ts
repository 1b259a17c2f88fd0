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

/** From about 2^28 hashes (tens of seconds on a laptop) a mint is worth announcing. */
const LONG_MINT_BITS = 28;

/** "42 s", "7 min", "3.5 h": an estimate, so no false precision. */
export function roughDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return 'unknown';
  if (seconds < 90) return `${Math.max(1, Math.round(seconds))} s`;
  if (seconds < 90 * 60) return `${Math.round(seconds / 60)} min`;
  if (seconds < 48 * 3600) return `${(seconds / 3600).toFixed(1)} h`;
  return `${Math.round(seconds / 86400)} days`;
}

/**
 * The progress of a mint as text: tokens, hashes, the rate, and the expected time left. Each
 * of the 16 tokens wants (bits − 4) leading zero bits, 2^(bits−4) hashes on average, and a
 * token's search has no memory, so what is left is about that per unfinished token.
 */
export function mintProgressText(bits: number, p: { tokensDone: number; tokens: number; hashes: number }, elapsedMs: number): string {
  const rate = elapsedMs > 0 ? p.hashes / (elapsedMs / 1000) : 0;
  const left = (p.tokens - p.tokensDone) * 2 ** Math.max(0, bits - 4);
  const eta = rate > 0 ? `, about ${roughDuration(left / rate)} left` : '';
  return `minting proof of work (${bits} bits): ${p.tokensDone}/${p.tokens} tokens, ${(p.hashes / 1e6).toFixed(1)}M hashes, ${(rate / 1e6).toFixed(1)}M hashes/s${eta}`;
}

/** A progress line that rewrites itself; only on a terminal, where \r means something. */
function progressLine(out: OutStream, bits: number, now: () => number = Date.now) {
  let shown = false;
  const began = now();
  return {
    update(p: { tokensDone: number; tokens: number; hashes: number }) {
      shown = true;
      out.write(`\r\x1b[K${mintProgressText(bits, p, now() - began)}`);
    },
    clear() {
      if (shown) out.write('\r\x1b[K');
    },
    /** Leaves the last progress on screen and ends its line, so what follows starts clean. */
    end(note: string) {
      out.write(shown ? ` ${note}\n` : `${note}\n`);
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
      const largest = hello.limits.max_payload_bytes - envelopeOverhead(recipient.bits);
      fail(
        'payload_too_large',
        `the encrypted message would be ${payloadBytes} bytes, the node takes at most ${hello.limits.max_payload_bytes}: ` +
          `the largest message to ${recipient.name} that fits is ${largest} bytes (encryption to a ${recipient.bits}-bit key adds ${envelopeOverhead(recipient.bits)})`,
      );
    }
    const tablePrivateKey = await keyring.privateKey(table.name);

    const pool = new MintPool({ threads: availableParallelism() });
    const progress = io.stderr.isTTY ? progressLine(io.stderr, hello.pow_bits) : undefined;
    // Ctrl-C while minting: stop the workers, end the progress line, send nothing.
    const cancel = new AbortController();
    void io.stopSignal().then(() => cancel.abort());
    // Without a terminal there is no progress line: say once, up front, when the work is long.
    if (!progress && hello.pow_bits >= LONG_MINT_BITS) {
      println(io.stderr, `minting proof of work (${hello.pow_bits} bits, about 2^${hello.pow_bits} hashes): this can take a while; Ctrl-C cancels`);
    }
    let created;
    try {
      created = await createEntry({
        tablePrivateKey,
        recipientPublicKey: recipient.publicKey,
        plaintext,
        powBits: hello.pow_bits,
        mint: (id, bits) => pool.mint(id, bits, { signal: cancel.signal, ...(progress ? { onProgress: (x) => progress.update(x) } : {}) }),
      });
      progress?.clear();
    } catch (e) {
      if (!cancel.signal.aborted) {
        progress?.clear();
        throw e;
      }
      if (progress) progress.end('cancelled');
      println(io.stderr, 'cancelled: nothing was sent to the node');
      return 130; // the shell's code for a command ended by Ctrl-C
    } finally {
      await pool.close();
    }
    const result = await api.put(created.entry);
    println(io.stdout, `${result.status} ${result.id}`);
    return 0;
  },
};
