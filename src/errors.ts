/**
 * Errors are values with a stable code. The code is part of the protocol
 * (clients switch on it), the message is for people.
 */
export type ErrorCode =
  | 'malformed'
  | 'bad_key'
  | 'key_size'
  | 'id_mismatch'
  | 'created_in_future'
  | 'table_not_allowed'
  | 'pow_insufficient'
  | 'bad_signature'
  | 'payload_too_large'
  | 'batch_too_large'
  | 'unsupported_media_type'
  | 'bad_request'
  | 'not_found'
  | 'method_not_allowed'
  | 'decrypt_failed'
  | 'config_invalid'
  | 'keyring_locked'
  | 'keyring_bad_passphrase'
  | 'key_not_found'
  | 'key_exists'
  | 'node_unreachable'
  | 'tor_control'
  | 'tor_command_failed'
  | 'tor_timeout'
  | 'tor_process'
  | 'tor_port_in_use'
  | 'torrc_invalid'
  | 'not_onion_url'
  | 'identity_invalid'
  | 'identity_permissions'
  | 'onion_mismatch'
  | 'tor_no_network'
  | 'hello_misaddressed'
  | 'hello_stale'
  | 'hello_self'
  | 'tor_off'
  | 'peer_unreachable'
  | 'peer_refused'
  | 'peer_bad_answer'
  | 'too_many_subscribers'
  // sync transport (src/sync/session.ts, src/http/routes/sync.ts, the local control listener)
  | 'peer_banned'
  | 'unauthorized'
  | 'busy'
  | 'rate_limited'
  | 'mint_cancelled'
  | 'keystore_locked'
  | 'sync_malformed'
  | 'store_unavailable'
  // the local PostgreSQL server that tests, benches and the testnet start (src/store/postgres/local-server.ts)
  | 'postgres_unavailable'
  | 'postgres_failed'
  | 'postgres_port_in_use'
  // p2pdb db copy (src/store/copy/, src/cli/db.ts)
  | 'node_running'
  | 'db_copy_same_database'
  | 'db_copy_source_missing'
  | 'db_copy_target_conflict'
  | 'db_copy_mismatch'
  | 'db_copy_interrupted'
  | 'internal';

/** HTTP status for each code that can reach a client over the wire. */
export const httpStatusOf: Record<ErrorCode, number> = {
  malformed: 400,
  bad_key: 400,
  key_size: 400,
  id_mismatch: 400,
  created_in_future: 400,
  bad_request: 400,
  table_not_allowed: 403,
  pow_insufficient: 403,
  bad_signature: 403,
  payload_too_large: 413,
  batch_too_large: 413,
  unsupported_media_type: 415,
  not_found: 404,
  method_not_allowed: 405,
  decrypt_failed: 400,
  config_invalid: 400,
  keyring_locked: 400,
  keyring_bad_passphrase: 400,
  key_not_found: 404,
  key_exists: 409,
  node_unreachable: 502,
  tor_control: 503,
  tor_command_failed: 502,
  tor_timeout: 504,
  tor_process: 503,
  tor_port_in_use: 503,
  torrc_invalid: 500,
  not_onion_url: 400,
  identity_invalid: 500,
  identity_permissions: 500,
  onion_mismatch: 502,
  tor_no_network: 503,
  hello_misaddressed: 403,
  hello_stale: 403,
  hello_self: 403,
  tor_off: 503,
  peer_unreachable: 502,
  peer_refused: 502,
  peer_bad_answer: 502,
  too_many_subscribers: 503,
  peer_banned: 403,
  unauthorized: 401,
  busy: 503,
  rate_limited: 429,
  mint_cancelled: 400,
  keystore_locked: 400,
  sync_malformed: 400,
  store_unavailable: 503,
  postgres_unavailable: 503,
  postgres_failed: 503,
  postgres_port_in_use: 503,
  node_running: 409,
  db_copy_same_database: 400,
  db_copy_source_missing: 404,
  db_copy_target_conflict: 409,
  db_copy_mismatch: 500,
  db_copy_interrupted: 503,
  internal: 500,
};

export class P2pdbError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = 'P2pdbError';
    this.code = code;
  }
  get status(): number {
    return httpStatusOf[this.code];
  }
  toJSON(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

export function fail(code: ErrorCode, message: string): never {
  throw new P2pdbError(code, message);
}

export function isP2pdbError(e: unknown): e is P2pdbError {
  return e instanceof P2pdbError;
}
