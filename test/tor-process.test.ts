/** spawnTor's failure path, with a real spawn of a binary that does not exist. */
import assert from 'node:assert/strict';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { test } from 'node:test';
import { isP2pdbError } from '../src/errors.js';
import { spawnTor } from '../src/tor/process.js';
import { tempDir } from './helpers/tmp.js';

test('a missing tor binary is a typed error, and the spawn error that follows does not crash the process', async () => {
  const dir = tempDir('p2pdb-tor-process-');
  assert.throws(
    () => spawnTor({ name: 'missing', torrcPath: `${dir}/torrc`, dir, torBinary: `${dir}/no-such-tor` }),
    (e: unknown) => isP2pdbError(e) && e.code === 'tor_process',
  );
  // The child's 'error' event arrives after the throw; an unhandled one would end this process.
  let uncaught: unknown;
  const onUncaught = (err: unknown) => (uncaught = err);
  process.on('uncaughtException', onUncaught);
  try {
    for (let i = 0; i < 5; i++) await nextTurn();
  } finally {
    process.off('uncaughtException', onUncaught);
  }
  assert.equal(uncaught, undefined);
});
