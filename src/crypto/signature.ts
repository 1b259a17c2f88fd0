/**
 * RSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt. The salt length is explicit on
 * both sides: node:crypto would otherwise sign with the maximum salt, which WebCrypto and
 * node-forge verifiers (salt 32) refuse.
 */
import { constants, sign, verify, type KeyObject } from 'node:crypto';

export const PSS_SALT_BYTES = 32;

const pss = (key: KeyObject) => ({
  key,
  padding: constants.RSA_PKCS1_PSS_PADDING,
  saltLength: PSS_SALT_BYTES,
});

export function signPss(privateKey: KeyObject, message: Uint8Array): Buffer {
  return sign('sha256', message, pss(privateKey));
}

export function verifyPss(publicKey: KeyObject, message: Uint8Array, signature: Uint8Array): boolean {
  try {
    return verify('sha256', message, pss(publicKey), signature);
  } catch {
    return false;
  }
}
