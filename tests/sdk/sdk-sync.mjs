// What a real client holds after its first sync: the PowerSync client SDK for Node.js (@powersync/node,
// pinned in package-lock.json, on better-sqlite3) connects to a service, waits for its first complete
// checkpoint, and prints each table's rows as the SDK stored them (the internal `ps_data__<table>` tables:
// id and the row's JSON text), and its buckets. For the compare tests (xtask/tests/compare.rs).
//   node sdk-sync.mjs < input.json
//   input:  {url, token, tables: [name, …], timeout_ms, until_failure}
//           (until_failure: stop waiting at the SDK's first warning or error, e.g. a checkpoint it could not
//           apply, instead of waiting out timeout_ms for a sync that cannot come)
//   output: {synced: true, tables: {name: {id: data}}, buckets: [name, …]}
//           or {synced: false, error: "<the SDK's download error, if any>", log: [its warnings]} when the
//           first sync did not complete
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LogLevels, PowerSyncDatabase, Schema, Table, column } from '@powersync/node';

const input = JSON.parse(readFileSync(0, 'utf8'));
// The schema only names the tables; the rows are read from the SDK's own storage, untyped.
const schema = new Schema(Object.fromEntries(input.tables.map((name) => [name, new Table({ unused: column.text })])));
const dir = mkdtempSync(join(tmpdir(), 'sdk-sync-'));
// The SDK's warnings and errors, for the answer when the first sync does not complete.
const log = [];
let failed;
const failure = new Promise((resolve) => (failed = resolve));
const logger = {
  log: (record) => {
    if (record.level >= LogLevels.warn) {
      log.push(`${record.message}${record.error ? `: ${record.error}` : ''}`);
      failed();
    }
  }
};
const db = new PowerSyncDatabase({ schema, logger, database: { dbFilename: 'client.db', dbLocation: dir } });
const connector = {
  fetchCredentials: async () => ({ endpoint: input.url, token: input.token }),
  uploadData: async () => {}
};
let output;
try {
  await db.connect(connector);
  // On timeout this returns (it does not throw): hasSynced tells which.
  const synced = db.waitForFirstSync({ signal: AbortSignal.timeout(input.timeout_ms) });
  await (input.until_failure ? Promise.race([synced, failure]) : synced);
  if (!db.currentStatus.hasSynced) {
    const error = db.currentStatus.dataFlowStatus.downloadError;
    output = { synced: false, error: error ? String(error.message ?? error) : null, log };
  }
  if (!output) {
    const tables = {};
    for (const name of input.tables) {
      const rows = await db.getAll(`SELECT id, data FROM "ps_data__${name}" ORDER BY id`);
      tables[name] = Object.fromEntries(rows.map((row) => [row.id, row.data]));
    }
    const buckets = (await db.getAll('SELECT name FROM ps_buckets ORDER BY name')).map((row) => row.name);
    output = { synced: true, tables, buckets };
  }
} finally {
  await db.disconnect();
  await db.close();
  rmSync(dir, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(output));
