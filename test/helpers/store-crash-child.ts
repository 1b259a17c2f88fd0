/**
 * Child for the crash test: inserts batches forever and prints each batch's ids (hex, one
 * JSON line) only after insert() has resolved. The parent SIGKILLs it mid-stream.
 * argv: <database file>
 */
import { openStore } from '../../src/store/sqlite-store.js';
import { fakeEntry, fakeRecipient, fakeTable } from './store-fixtures.js';

const filename = process.argv[2];
if (!filename) throw new Error('usage: store-crash-child <database file>');
const store = await openStore({ filename });
const tables = [fakeTable(), fakeTable()];
const recipients = [fakeRecipient(), fakeRecipient(), fakeRecipient()];
for (let i = 0; ; i++) {
  const batch = Array.from({ length: 100 }, (_, k) => fakeEntry({ table: tables[k % 2]!, to: recipients[k % 3]! }));
  // Two calls in flight, so the kill also lands while a group commit is open.
  const [a, b] = [batch.slice(0, 50), batch.slice(50)];
  await Promise.all([
    store.insert(a).then(() => process.stdout.write(JSON.stringify({ ids: a.map((e) => e.id.toString('hex')) }) + '\n')),
    store.insert(b).then(() => process.stdout.write(JSON.stringify({ ids: b.map((e) => e.id.toString('hex')) }) + '\n')),
  ]);
}
