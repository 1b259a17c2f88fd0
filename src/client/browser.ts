/**
 * The browser client: the browser-safe pieces of p2pdb in one entry (package export "./browser").
 * No node: imports and no Buffer; bundle it with any bundler. Crypto runs on WebCrypto in secure
 * contexts and on node-forge elsewhere (selectBackend), proofs are minted in a Web Worker whose
 * script answers with answerMintRequest (see src/web/worker.ts), and the node is reached with
 * fetch and EventSource.
 */
export {
  selectBackend, webCryptoAvailable, pkcs8FromPem, pkcs8FromJwk, jwkFromPkcs8, pemFromPkcs8, spkiFromPem, spkiOfPkcs8, publicPemFromSpki,
  type BackendKind, type BrowserPrivateKey, type BrowserPublicKey, type CryptoBackend,
} from './browser-crypto.js';
export { buildEntry, canonicalBytes, checkStoredEntry, entryId, type BrowserMint, type CheckedEntry, type StoredWireEntry, type WireEntry } from './browser-entry.js';
export { answerMintRequest, mintInWorker, mintWithProgress, pickKernel, type MintJob, type MintProgress, type MintReply, type MintRequest, type WorkerLike, type WorkerScopeLike } from './browser-mint.js';
export { BrowserNode, filterQuery, type BrowserFilters, type NodeHello } from './browser-node.js';
export { decodePairingFragment, encodePairingFragment, isPairingFragment, pairingLink, type DecodedPairing, type PairingKeys } from './pairing.js';
export { fromBase64, fromBase64Url, fromHex, toBase64, toBase64Url, toHex } from './base64url.js';
export { P2pdbError, isP2pdbError, type ErrorCode } from '../errors.js';
