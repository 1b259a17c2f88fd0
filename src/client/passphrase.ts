/**
 * Where the keyring passphrase comes from: P2PDB_PASSPHRASE, else a hidden prompt when both
 * stdin and stderr are terminals, else keyring_locked (never a silent empty passphrase).
 */
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { P2pdbError, fail } from '../errors.js';
import type { PassphraseRequest, PassphraseSource } from './keyring.js';

export const PASSPHRASE_ENV = 'P2PDB_PASSPHRASE';

export interface PassphraseSourceOptions {
  env: NodeJS.ProcessEnv;
  input: NodeJS.ReadableStream & { isTTY?: boolean };
  /** Where the prompt goes: stderr, so stdout stays clean for output that is piped on. */
  output: NodeJS.WritableStream & { isTTY?: boolean };
}

export function passphraseSource(opts: PassphraseSourceOptions): PassphraseSource {
  return async (request: PassphraseRequest) => {
    const fromEnv = opts.env[PASSPHRASE_ENV];
    if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
    if (!opts.input.isTTY || !opts.output.isTTY) {
      fail('keyring_locked', `the keyring is locked: set ${PASSPHRASE_ENV} or run this in a terminal to be asked for the ${request.purpose}`);
    }
    const first = await promptHidden(`Enter ${request.purpose}: `, opts.input, opts.output);
    if (!request.confirm) return first;
    const again = await promptHidden('Repeat it: ', opts.input, opts.output);
    if (again !== first) fail('keyring_bad_passphrase', 'the two passphrases differ; nothing was changed');
    return first;
  };
}

/** Reads one line from a terminal without echoing it. */
export function promptHidden(
  question: string,
  input: NodeJS.ReadableStream,
  output: NodeJS.WritableStream,
): Promise<string> {
  return new Promise((resolve, reject) => {
    let muted = false;
    // readline echoes what is typed to its output; this output drops everything once the prompt is out.
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        if (!muted) output.write(chunk);
        cb();
      },
    });
    const rl = createInterface({ input, output: sink, terminal: true });
    let answer: string | undefined;
    rl.on('SIGINT', () => rl.close());
    rl.on('close', () => {
      output.write('\n');
      if (answer === undefined) reject(new P2pdbError('keyring_locked', 'no passphrase given'));
      else resolve(answer);
    });
    rl.question(question, (line) => {
      answer = line;
      rl.close();
    });
    muted = true;
  });
}
