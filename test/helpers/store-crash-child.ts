/**
 * Child for the crash test: inserts batches forever and prints each batch's ids (hex, one
 * JSON line) only after insert() has resolved. The parent SIGKILLs it mid-stream.
 * argv: <database locator as JSON (src/store/database-locator.ts)>
 */
import { openStore } from '../../src/store/open.js';
import { fakeEntry, fakeRecipient, fakeTable } from './store-fixtures.js';

const locator = process.argv[2];
if (!locator) throw new Error('usage: store-crash-child <database locator JSON>');
const store = await openStore({ database: JSON.parse(locator) });
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
