/**
 * Minting a proof-of-work cluster in-process, synchronously, on the calling thread. For tests,
 * low bit counts and tools; the node and clients use MintPool (mint-pool.ts) for real work.
 */
import { fail } from '../errors.js';
import { POW_NONCE_BYTES, POW_PROOF_BYTES, POW_TOKENS, tokenBitsFor } from './cluster.js';
import { PowKernel, createKernel } from './sha256-kernel.js';
import { MAX_TOKEN_BITS, writeNonce } from './token-block.js';

/** Checks the arguments of a mint and returns the bits each token needs. */
export function mintTokenBits(id: Uint8Array, clusterBits: number): number {
  if (!(id instanceof Uint8Array) || id.length !== 32) fail('malformed', 'a proof-of-work id is 32 bytes');
  const max = MAX_TOKEN_BITS + 4;
  if (!Number.isInteger(clusterBits) || clusterBits < 0 || clusterBits > max) {
    fail('bad_request', `cluster bits must be an integer from 0 to ${max}`);
  }
  return tokenBitsFor(clusterBits);
}

/** The 128-byte proof holding one nonce per token. */
export function encodeProof(nonces: readonly (number | undefined)[]): Buffer {
  const proof = Buffer.alloc(POW_PROOF_BYTES);
  nonces.forEach((n, i) => {
    if (n === undefined) fail('internal', `token ${i} has no nonce`);
    writeNonce(proof, i * POW_NONCE_BYTES, n);
  });
  return proof;
}

let shared: PowKernel | undefined;

/** Nonces per kernel call; the search of a token simply continues into the next range. */
const RANGE = 2 ** 24;

/** A proof worth at least `clusterBits` for `id` (see proofValue). Blocks the thread meanwhile. */
export function mintProof(id: Uint8Array, clusterBits: number, kernel?: PowKernel): Buffer {
  const bits = mintTokenBits(id, clusterBits);
  const k = kernel ?? (shared ??= createKernel());
  const nonces: number[] = [];
  for (let token = 0; token < POW_TOKENS; token++) {
    let found: number | undefined;
    for (let start = 0; found === undefined; start += RANGE) found = k.search(id, token, bits, start, RANGE);
    nonces.push(found);
  }
  return encodeProof(nonces);
}
