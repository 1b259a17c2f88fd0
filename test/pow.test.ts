import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { hash, randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { NONCE_OFFSET, POW_PROOF_BYTES, leadingZeroBits, proofValue, tokenInput } from '../src/pow/cluster.js';
import { createKernel, KernelKind, PowKernel } from '../src/pow/sha256-kernel.js';
import { readNonce, templateWords, writeNonce, zeroBitMasks } from '../src/pow/token-block.js';
import { mintProof } from '../src/pow/mint.js';
import { MintPlan } from '../src/pow/mint-plan.js';
import { MintPool, MintProgress } from '../src/pow/mint-pool.js';
import { P2pdbError } from '../src/errors.js';

/** Leading zero bits of token `index` at `nonce`, by node:crypto. */
function tokenBits(id: Uint8Array, index: number, nonce: number): number {
  const input = tokenInput(id, index);
  writeNonce(input, NONCE_OFFSET, nonce);
  return leadingZeroBits(hash('sha256', input, 'buffer') as unknown as Buffer);
}

function isCode(code: string) {
  return (e: unknown) => e instanceof P2pdbError && e.code === code;
}

describe('token block', () => {
  test('template words are the first 44 bytes of the cluster.ts token input', () => {
    const id = randomBytes(32);
    const input = tokenInput(id, 7);
    const words = templateWords(id, 7);
    for (let i = 0; i < words.length; i++) assert.equal(words[i], input.readUInt32BE(i * 4));
  });

  test('nonces are 8 big-endian bytes and round-trip up to 2^53 - 1', () => {
    const buf = new Uint8Array(10);
    for (const n of [0, 1, 0xffff, 0x1_0000, 0xffff_ffff, 0x1_0000_0000, 2 ** 48 + 5, Number.MAX_SAFE_INTEGER]) {
      writeNonce(buf, 1, n);
      assert.equal(readNonce(buf, 1), n);
      assert.equal(Buffer.from(buf.subarray(1, 9)).readBigUInt64BE(), BigInt(n));
    }
  });

  test('zero-bit masks accept a digest exactly when it has the bits', () => {
    for (let lz = 0; lz <= 64; lz++) {
      // A digest with exactly lz leading zero bits, the rest ones.
      const d = Buffer.alloc(32, 0xff);
      for (let b = 0; b < lz; b++) d[b >> 3]! &= ~(0x80 >> (b & 7));
      assert.equal(leadingZeroBits(d), lz);
      const h0 = d.readInt32BE(0);
      const h1 = d.readInt32BE(4);
      for (let bits = 0; bits <= 64; bits++) {
        const [m0, m1] = zeroBitMasks(bits);
        assert.equal(((h0 & m0) | (h1 & m1)) === 0, lz >= bits, `lz ${lz} bits ${bits}`);
      }
    }
  });
});

for (const kind of ['wasm', 'js'] as KernelKind[]) {
  describe(`${kind} kernel`, () => {
    const kernel: PowKernel = createKernel(kind);

    test('reports its kind', () => assert.equal(kernel.kind, kind));

    test('finds the first nonce with the bits, as node:crypto computes them', () => {
      // Starts next to the 16-bit and 32-bit carries of the nonce words.
      const starts = [0, 0xffff - 40, 0x3_ffff - 3, 0xffff_ffff - 200, 2 ** 40 + 0xfff0];
      for (const [i, start] of starts.entries()) {
        for (const bits of [0, 1, 5, 9]) {
          const id = randomBytes(32);
          const index = (i * 5 + bits) % 16;
          const found = kernel.search(id, index, bits, start, 1 << 20);
          assert.ok(found !== undefined, `nothing found for ${bits} bits`);
          assert.ok(tokenBits(id, index, found) >= bits, 'the nonce has the bits');
          for (let n = start; n < found; n++) assert.ok(tokenBits(id, index, n) < bits, `${n} was skipped`);
          assert.equal(kernel.search(id, index, bits, start, found - start), undefined, 'none before it');
        }
      }
    });

    test('carries across the nonce word boundaries', () => {
      for (const start of [0xffff - 3, 0xffff_ffff - 3, 2 ** 48 - 3]) {
        const id = randomBytes(32);
        const bits = Array.from({ length: 8 }, (_, k) => tokenBits(id, 1, start + k));
        for (const b of new Set(bits)) {
          assert.equal(kernel.search(id, 1, b, start, 8), start + bits.findIndex((x) => x >= b), `start ${start}, ${b} bits`);
        }
      }
    });

    test('agrees with node:crypto on the best token over a range', () => {
      const id = randomBytes(32);
      let best = 0;
      for (let n = 0; n < 4096; n++) best = Math.max(best, tokenBits(id, 3, n));
      assert.ok(kernel.search(id, 3, best, 0, 4096) !== undefined);
      assert.equal(kernel.search(id, 3, best + 1, 0, 4096), undefined);
    });

    test('refuses bad arguments with codes', () => {
      assert.throws(() => kernel.search(new Uint8Array(31), 0, 4, 0, 10), isCode('malformed'));
      assert.throws(() => kernel.search(new Uint8Array(32), 0, 65, 0, 10), isCode('bad_request'));
      assert.throws(() => kernel.search(new Uint8Array(32), 16 * 16, 4, 0, 10), isCode('bad_request'));
      assert.throws(() => kernel.search(new Uint8Array(32), 0, 4, 2 ** 53, 1), isCode('bad_request'));
      assert.throws(() => kernel.search(new Uint8Array(32), 0, 4, -1, 1), isCode('bad_request'));
      assert.equal(kernel.search(new Uint8Array(32), 0, 4, 0, 0), undefined);
    });
  });
}

test('falls back to the JS kernel where WebAssembly is disabled', () => {
  const saved = Object.getOwnPropertyDescriptor(globalThis, 'WebAssembly')!;
  Reflect.deleteProperty(globalThis, 'WebAssembly');
  try {
    assert.equal(createKernel().kind, 'js');
    assert.throws(() => createKernel('wasm'), isCode('internal'));
  } finally {
    Object.defineProperty(globalThis, 'WebAssembly', saved);
  }
  assert.equal(createKernel().kind, 'wasm');
});

describe('mintProof', () => {
  test('reaches the bits asked for, for random ids', () => {
    for (const bits of [0, 4, 8, 11, 14]) {
      for (let r = 0; r < 2; r++) {
        const id = randomBytes(32);
        const proof = mintProof(id, bits);
        assert.equal(proof.length, POW_PROOF_BYTES);
        assert.ok(proofValue(id, proof) >= bits, `${bits} bits`);
      }
    }
  });

  test('works with the JS kernel', () => {
    const id = randomBytes(32);
    assert.ok(proofValue(id, mintProof(id, 12, createKernel('js'))) >= 12);
  });

  test('a proof is bound to its id', () => {
    const id = randomBytes(32);
    const proof = mintProof(id, 14);
    // Another id sees 16 random tokens: all of them reaching 10 bits has odds of 2^-160.
    for (let r = 0; r < 4; r++) assert.ok(proofValue(randomBytes(32), proof) < 14);
  });

  test('refuses bad arguments with codes', () => {
    assert.throws(() => mintProof(new Uint8Array(16), 8), isCode('malformed'));
    assert.throws(() => mintProof(new Uint8Array(32), 8.5), isCode('bad_request'));
    assert.throws(() => mintProof(new Uint8Array(32), 69), isCode('bad_request'));
  });
});

describe('MintPlan', () => {
  test('gives free workers different tokens, then shares the last ones over disjoint ranges', () => {
    const plan = new MintPlan(3, 100);
    const a = plan.take()!;
    const b = plan.take()!;
    assert.deepEqual([a.token, b.token], [0, 1]);
    plan.settle(a, undefined);
    assert.deepEqual(plan.take(), { token: 0, start: 100, count: 100 }, 'a worker keeps to its token');
    plan.settle(b, 150);
    const c = plan.take()!;
    assert.equal(c.token, 2);
    plan.settle({ token: 0, start: 100, count: 100 }, 123);
    assert.equal(plan.tokensDone, 2);
    const d = plan.take()!;
    assert.deepEqual([d.token, d.start], [2, 100], 'the last token is shared');
    plan.settle(d, 777);
    plan.settle(c, 42); // a later find of a solved token does not replace the first
    assert.ok(plan.done);
    assert.deepEqual(plan.nonces, [123, 150, 777]);
    assert.equal(plan.take(), undefined);
  });
});

describe('MintPool', () => {
  const pool = new MintPool({ threads: 2, progressIntervalMs: 0, chunkSize: 4096 });
  after(() => pool.close());

  test('warms up and mints valid proofs', async () => {
    await pool.ready();
    assert.equal(pool.kernel, 'wasm');
    for (const bits of [6, 12, 14]) {
      const id = randomBytes(32);
      assert.ok(proofValue(id, await pool.mint(id, bits)) >= bits);
    }
  });

  test('reports progress up to all 16 tokens', async () => {
    const id = randomBytes(32);
    const seen: MintProgress[] = [];
    const proof = await pool.mint(id, 14, { onProgress: (p) => seen.push(p) });
    assert.ok(proofValue(id, proof) >= 14);
    assert.ok(seen.length >= 2, 'several reports');
    for (let i = 1; i < seen.length; i++) {
      assert.ok(seen[i]!.hashes >= seen[i - 1]!.hashes && seen[i]!.tokensDone >= seen[i - 1]!.tokensDone);
    }
    const last = seen.at(-1)!;
    assert.deepEqual([last.tokensDone, last.tokens], [16, 16]);
    assert.ok(last.hashes >= 16, 'at least one hash per token');
  });

  test('can be cancelled, and then still works', async () => {
    const controller = new AbortController();
    const id = randomBytes(32);
    // 60 bits would take centuries: it ends only by the abort, sent once work is under way.
    const cancelled = pool.mint(id, 60, {
      signal: controller.signal,
      onProgress: (p) => {
        if (p.hashes > 0) controller.abort();
      },
    });
    await assert.rejects(cancelled, (e: Error) => e.name === 'AbortError');
    const again = randomBytes(32);
    assert.ok(proofValue(again, await pool.mint(again, 12)) >= 12);
  });

  test('an aborted signal or a cancelled queued job rejects at once', async () => {
    await assert.rejects(pool.mint(randomBytes(32), 12, { signal: AbortSignal.abort() }), { name: 'AbortError' });
    const running = pool.mint(randomBytes(32), 12);
    const controller = new AbortController();
    const queued = pool.mint(randomBytes(32), 60, { signal: controller.signal });
    controller.abort();
    await assert.rejects(queued, { name: 'AbortError' });
    await running;
  });

  test('queues concurrent jobs and mints each for its own id', async () => {
    const ids = Array.from({ length: 5 }, () => randomBytes(32));
    const proofs = await Promise.all(ids.map((id) => pool.mint(id, 12)));
    proofs.forEach((proof, i) => assert.ok(proofValue(ids[i]!, proof) >= 12));
  });

  test('a failing progress callback fails only its job', async () => {
    const boom = new Error('boom');
    const failing = pool.mint(randomBytes(32), 40, {
      onProgress: () => {
        throw boom;
      },
    });
    await assert.rejects(failing, (e) => e === boom);
    const id = randomBytes(32);
    assert.ok(proofValue(id, await pool.mint(id, 10)) >= 10);
  });

  test('refuses bad arguments with codes', async () => {
    await assert.rejects(pool.mint(new Uint8Array(8), 10), isCode('malformed'));
    assert.throws(() => new MintPool({ threads: 0 }), isCode('bad_request'));
  });

  test('runs the JS kernel in workers', async () => {
    const jsPool = new MintPool({ threads: 1, kernel: 'js' });
    try {
      const id = randomBytes(32);
      assert.ok(proofValue(id, await jsPool.mint(id, 10)) >= 10);
      assert.equal(jsPool.kernel, 'js');
    } finally {
      await jsPool.close();
    }
  });

  test('close cancels pending jobs and refuses new ones', async () => {
    const closing = new MintPool({ threads: 1 });
    const pending = assert.rejects(closing.mint(randomBytes(32), 60), { name: 'AbortError' });
    await closing.close();
    await pending;
    await assert.rejects(closing.mint(randomBytes(32), 8), isCode('internal'));
  });
});

describe('process lifetime', () => {
  const poolUrl = new URL('../src/pow/mint-pool.js', import.meta.url).href;

  /** Runs an ES module snippet in a fresh node; resolves with its exit code and output. */
  function run(source: string): Promise<{ code: number | null; out: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['--input-type=module', '-e', source], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.on('error', reject);
      child.on('exit', (code) => resolve({ code, out }));
    });
  }

  test('a closed pool lets the process exit', { timeout: 60_000 }, async () => {
    const { code, out } = await run(`
      import { MintPool } from ${JSON.stringify(poolUrl)};
      const pool = new MintPool({ threads: 2 });
      const proof = await pool.mint(new Uint8Array(32), 10);
      await pool.close();
      console.log(proof.length);
    `);
    assert.deepEqual({ code, out: out.trim() }, { code: 0, out: '128' });
  });

  test('an unref’d idle pool lets the process exit', { timeout: 60_000 }, async () => {
    const { code, out } = await run(`
      import { MintPool } from ${JSON.stringify(poolUrl)};
      const pool = new MintPool({ threads: 2 }).unref();
      const proof = await pool.mint(new Uint8Array(32), 10);
      console.log(proof.length);
    `);
    assert.deepEqual({ code, out: out.trim() }, { code: 0, out: '128' });
  });
});
