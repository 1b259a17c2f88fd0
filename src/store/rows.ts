/** The entries table's row as both databases return it, named once for every query module. */
export interface EntryRow {
  seq: number;
  id: Buffer;
  table_id: number;
  recipient: Buffer;
  received_at: number;
  created_at: number;
  version: number;
  payload: Buffer;
  signature: Buffer;
  proof: Buffer;
}

export const ENTRY_COLUMNS = ['seq', 'id', 'table_id', 'recipient', 'received_at', 'created_at', 'version', 'payload', 'signature', 'proof'] as const;
