import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { createEntry } from '../../src/client/write.js';
import { entryToJson } from '../../src/entry/wire.js';
import type { Entry, EntryJson } from '../../src/entry/types.js';
import { mintProof } from '../../src/pow/mint.js';

export interface TestKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  privatePem: string;
  publicPem: string;
}

export function testKey(bits = 2048): TestKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: bits, publicExponent: 65537 });
  return {
    privateKey,
    publicKey,
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

export function keyFromPem(pem: string): TestKey {
  const privateKey = createPrivateKey(pem);
  const publicKey = createPublicKey(privateKey);
  return {
    privateKey,
    publicKey,
    privatePem: pem,
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

export interface MadeEntry {
  entry: Entry;
  id: Buffer;
  json: EntryJson;
  idHex: string;
}

export async function makeEntry(opts: {
  table: TestKey;
  to: TestKey;
  text: string;
  bits?: number;
  createdAt?: number;
}): Promise<MadeEntry> {
  const { entry, id } = await createEntry({
    tablePrivateKey: opts.table.privateKey,
    recipientPublicKey: opts.to.publicKey,
    plaintext: Buffer.from(opts.text, 'utf8'),
    powBits: opts.bits ?? 12,
    mint: async (i, b) => mintProof(i, b),
    ...(opts.createdAt !== undefined ? { createdAt: opts.createdAt } : {}),
  });
  return { entry, id, json: entryToJson(entry), idHex: id.toString('hex') };
}

export async function postJson(url: string, body: unknown, contentType = 'application/json'): Promise<{ status: number; body: any }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': contentType },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

export async function getJson(url: string): Promise<{ status: number; body: any }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.json() };
}
