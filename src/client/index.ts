/**
 * The p2pdb client library for Node (the package's "." export). See docs/CLIENT.md.
 *
 *   const client = new P2pdbClient('http://127.0.0.1:8733');
 *   await client.put({ table: table.privateKey, to: alice.publicKey, data: 'hello' });
 *   for await (const e of client.subscribe({ recipients: [alice.fingerprint] })) ...
 */
export { P2pdbClient, type ClientOptions, type ClientSubscribeOptions, type PutOptions, type ReadOptions } from './client.js';
export { generateKeys, importPrivateKey, importPublicKey, exportPrivateKey, exportPublicKey, fingerprintOf, type KeyPair, type PublicKey } from './keys.js';
export { NodeApi, DEFAULT_NODE_URL, type GetFilters, type GetPage, type Hello, type PutResult, type BatchResult } from './node-api.js';
export { subscribeEntries, type SubscribeFilters, type SubscribeOptions } from './subscribe.js';
export { SseParser, type SseEvent } from './sse.js';
export { agentFetch, isOnionUrl } from './transport.js';
export { verifyStoredEntry, openEntry, type VerifiedEntry } from './read.js';
export { createEntry, type MintFunction } from './write.js';
export { sealEnvelope as encrypt, openEnvelope as decrypt } from '../crypto/envelope.js';
export { signPss as sign, verifyPss as verify } from '../crypto/signature.js';
export { MintPool, abortError, type MintOptions, type MintProgress, type MintPoolOptions } from '../pow/mint-pool.js';
export { peerAgent as socksAgent } from '../tor/socks.js';
export { P2pdbError, isP2pdbError, type ErrorCode } from '../errors.js';
export type { Entry, StoredEntryJson } from '../entry/types.js';
