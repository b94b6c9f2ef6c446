// Which buckets and rows each user receives, computed by the PowerSync Service's own sync-rules engine
// (@powersync/service-sync-rules, pinned in package-lock.json), for the `cargo xtask compare` tests
// (xtask/tests/compare.rs). The steps around the engine are the service's (1.25.0):
// - a row becomes bucket data through HydratedSyncConfig.evaluateRow; its data is stored as
//   JSONBig.stringify(data) and its PUT checksum is hashData(table, id, data): the first four bytes of
//   sha256("put.<table>.<id>.<data>"), little-endian (packages/service-core/src/util/utils.ts,
//   modules/module-postgres-storage/src/storage/batch/PostgresPersistedBatch.ts);
// - a user's buckets are the querier's static buckets plus its dynamic ones, looked up in the parameter rows
//   that evaluateParameterRow produced (BucketChecksumState.ts);
// - with `bucket_version` set, bucket names carry the sync config's version as `<version>#…`, as they do when
//   the config enables `versioned_bucket_ids` (HydrationState.ts, versionedHydrationState).
//   node sync-buckets.mjs < input.json
//   input:  {sync_config: "<yaml>", bucket_version: null | n, tables: {name: [row, …]}, users: [jwt payload, …]}
//   output: {"<sub>": {"<bucket>": [{object_type, object_id, data, checksum}, …]}}, rows in table order
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { JSONBig } from '@powersync/service-jsonbig';
import {
  BaseJwtPayload,
  DEFAULT_HYDRATION_STATE,
  DEFAULT_TAG,
  RequestParameters,
  SqlSyncRules,
  versionedHydrationState
} from '@powersync/service-sync-rules';

function hashData(type, id, data) {
  return createHash('sha256').update(`put.${type}.${id}.${data}`).digest().readUInt32LE(0);
}

// JSONBig reads whole numbers as integers (bigint), as the service receives integer columns.
const input = JSONBig.parse(readFileSync(0, 'utf8'));
const { config, errors } = SqlSyncRules.fromYaml(input.sync_config, { defaultSchema: 'public' });
const fatal = errors.filter((error) => error.type !== 'warning');
if (fatal.length > 0) {
  throw new Error(`the sync config does not parse: ${fatal.map((error) => error.message).join('; ')}`);
}
const hydrationState =
  input.bucket_version == null ? DEFAULT_HYDRATION_STATE : versionedHydrationState(input.bucket_version);
const rules = config.hydrate({ hydrationState, sqlite: null });

const table = (name) => ({ connectionTag: DEFAULT_TAG, schema: 'public', name });
const bucketRows = new Map();
const parameterRows = new Map();
for (const [name, rows] of Object.entries(input.tables)) {
  for (const raw of rows) {
    const row = rules.applyRowContext(raw);
    for (const evaluated of rules.evaluateRow({ sourceTable: table(name), record: row })) {
      const data = JSONBig.stringify(evaluated.data);
      const rows = bucketRows.get(evaluated.bucket) ?? [];
      rows.push({
        object_type: evaluated.table,
        object_id: evaluated.id,
        data,
        checksum: hashData(evaluated.table, evaluated.id, data)
      });
      bucketRows.set(evaluated.bucket, rows);
    }
    for (const evaluated of rules.evaluateParameterRow(table(name), row)) {
      const key = evaluated.lookup.serializedRepresentation;
      parameterRows.set(key, [...(parameterRows.get(key) ?? []), ...evaluated.bucketParameters]);
    }
  }
}

const lookups = {
  async getParameterSets(wanted) {
    return wanted.map((lookup) => ({ lookup, rows: parameterRows.get(lookup.serializedRepresentation) ?? [] }));
  }
};

const output = {};
for (const payload of input.users) {
  const { querier, errors } = rules.getBucketParameterQuerier({
    globalParameters: new RequestParameters(new BaseJwtPayload(payload), {}),
    hasDefaultStreams: true,
    streams: {}
  });
  if (errors.length > 0) {
    throw new Error(`buckets of ${payload.sub}: ${errors.map((error) => error.message).join('; ')}`);
  }
  const buckets = [...querier.staticBuckets, ...(await querier.queryDynamicBucketDescriptions(lookups))];
  const received = {};
  for (const { bucket } of buckets) {
    received[bucket] = bucketRows.get(bucket) ?? [];
  }
  output[payload.sub] = received;
}
process.stdout.write(JSON.stringify(output));
