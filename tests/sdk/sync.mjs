// The PowerSync client SDK for Node.js syncing from a sync endpoint, for xtask/tests/load.rs: it checks that
// what the load tests' stand-in for the service frames, a real client decodes and applies.
//   node sync.mjs <base url> <token> <rows>
// connects as an app does (schema: one table `items` with a text column `value`), prints one JSON line with the
// rows after the first complete sync ({"firstSync": [...]}), then one with the rows once there are <rows> of them
// ({"rows": [...]}), and exits 0; or prints {"error": ...} and exits 1 after 30 s.
import { PowerSyncDatabase, Schema, Table, column } from '@powersync/node';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [url, token, wanted] = process.argv.slice(2);
const db = new PowerSyncDatabase({
  schema: new Schema({ items: new Table({ value: column.text }) }),
  database: { dbFilename: 'sdk.db', dbLocation: mkdtempSync(join(tmpdir(), 'powersync-sdk-')) }
});
const fail = (error) => {
  console.log(JSON.stringify({ error: String(error) }));
  process.exit(1);
};
setTimeout(() => fail(`timed out; status ${JSON.stringify(db.currentStatus)}`), 30_000);
const rows = () => db.getAll('SELECT id, value FROM items ORDER BY CAST(id AS INTEGER)');

try {
  await db.connect({ fetchCredentials: async () => ({ endpoint: url, token }), uploadData: async () => {} });
  await db.waitForFirstSync();
  console.log(JSON.stringify({ firstSync: await rows() }));
  let now = await rows();
  while (now.length < Number(wanted)) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    now = await rows();
  }
  console.log(JSON.stringify({ rows: now }));
  await db.disconnectAndClear();
  process.exit(0);
} catch (error) {
  fail(error);
}
