import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** A fresh temporary directory, removed when the test process ends unless P2PDB_KEEP_TMP is set. */
export function tempDir(prefix = 'p2pdb-test-'): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  if (!process.env.P2PDB_KEEP_TMP) {
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  return dir;
}
