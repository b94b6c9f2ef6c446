// The PowerSync Service's own sync-rules engine (@powersync/service-sync-rules, pinned in package-lock.json)
// answering two questions for `cargo xtask test` (xtask/src/sync_rules.rs):
// - what the service says of a sync config: parsed as the replicator parses it at start
//   (SqlSyncRules.fromYaml with no source schema, errors not thrown), every error with its kind
//   (`fatal` stops the service, `warning` is logged) and its line;
// - which rows a token receives: each row is evaluated into the buckets it lands in, each token's buckets are
//   resolved as a sync request resolves them (static buckets, then dynamic ones looked up among the
//   parameter rows the same rows produce), on the source's default schema `public`.
//   node sync-rules.mjs < request.json
//   request:  {configs: [{name, yaml}], checks: [{name, config, claims, rows: [{table, values}]}]}
//   answer:   {configs: [{name, errors: [{type, message, line}]}],
//              checks: [{name, errors: [..], tokenBuckets: [..], rows: [{table, buckets: [..], data: [..]}]}]}
//   where a check's `config` is the name of one of `configs`, and a row's `data` is what each bucket syncs.
import { readFileSync } from 'node:fs';
import {
  BaseJwtPayload,
  DEFAULT_HYDRATION_STATE,
  DEFAULT_TAG,
  RequestParameters,
  SqlSyncRules,
  nodeSqlite
} from '@powersync/service-sync-rules';

const DEFAULT_SCHEMA = 'public';
// The service (Node 22) hands the engine node:sqlite, which only configs opting into
// `sqlite_expression_engine` use; on an older Node such a config fails at hydration, naming that option.
const sqlite = await import('node:sqlite').then((module) => nodeSqlite(module)).catch(() => null);

function lineOf(yaml, offset) {
  return offset == null ? null : yaml.slice(0, offset).split('\n').length;
}

function parse(yaml) {
  let parsed;
  try {
    parsed = SqlSyncRules.fromYaml(yaml, { schema: undefined, defaultSchema: DEFAULT_SCHEMA, throwOnError: false });
  } catch (error) {
    return { config: null, errors: [{ type: 'fatal', message: String(error?.message ?? error), line: null }] };
  }
  const errors = parsed.errors.map((error) => ({
    type: error.type,
    message: error.message,
    line: lineOf(yaml, error.location?.start)
  }));
  return { config: parsed.config, errors };
}

function table(name) {
  return { connectionTag: DEFAULT_TAG, schema: DEFAULT_SCHEMA, name };
}

async function check(hydrated, claims, rows) {
  const errors = [];
  const evaluated = rows.map((row) => {
    const { results, errors: rowErrors } = hydrated.evaluateRowWithErrors({
      sourceTable: table(row.table),
      record: row.values
    });
    errors.push(...rowErrors.map((e) => `row ${JSON.stringify(row.values)}: ${e.error}`));
    return { table: row.table, buckets: results.map((r) => r.bucket), data: results.map((r) => r.data) };
  });
  // Parameter rows from the same writes answer the token's dynamic lookups.
  const parameterRows = new Map();
  for (const row of rows) {
    const { results, errors: paramErrors } = hydrated.evaluateParameterRowWithErrors(table(row.table), row.values);
    errors.push(...paramErrors.map((e) => `parameter row ${JSON.stringify(row.values)}: ${e.error}`));
    for (const result of results) {
      const key = result.lookup.serializedRepresentation;
      parameterRows.set(key, [...(parameterRows.get(key) ?? []), ...result.bucketParameters]);
    }
  }
  const { querier, errors: querierErrors } = hydrated.getBucketParameterQuerier({
    globalParameters: new RequestParameters(new BaseJwtPayload(claims), {}),
    hasDefaultStreams: true,
    streams: {}
  });
  errors.push(...querierErrors.map((e) => `${e.descriptor}: ${e.message}`));
  const dynamic = await querier.queryDynamicBucketDescriptions({
    getParameterSets: async (lookups) =>
      lookups.map((lookup) => ({ lookup, rows: parameterRows.get(lookup.serializedRepresentation) ?? [] }))
  });
  const tokenBuckets = [...querier.staticBuckets, ...dynamic].map((b) => b.bucket);
  return { errors, tokenBuckets, rows: evaluated };
}

const request = JSON.parse(readFileSync(0, 'utf8'));
const parsed = new Map();
const configs = request.configs.map(({ name, yaml }) => {
  const result = parse(yaml);
  parsed.set(name, result);
  return { name, errors: result.errors };
});
const checks = [];
for (const { name, config, claims, rows } of request.checks) {
  const result = parsed.get(config);
  if (result == null) throw new Error(`check ${name}: no config named ${config}`);
  if (result.config == null) {
    checks.push({ name, errors: [`the sync config ${config} does not parse`], tokenBuckets: [], rows: [] });
    continue;
  }
  const hydrated = result.config.hydrate({ hydrationState: DEFAULT_HYDRATION_STATE, sqlite });
  checks.push({ name, ...(await check(hydrated, claims, rows)) });
}
process.stdout.write(JSON.stringify({ configs, checks }));
