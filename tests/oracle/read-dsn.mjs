// The PowerSync Service's reading of a source DSN, for the preflight's oracle test (xtask/tests/dsn_oracle.rs).
// The parser is the service's own dependency, uri-js 4.4.1 (pinned in package-lock.json). Around it, the
// few steps of the service's normalizeConnectionConfig (libs/lib-postgres/src/types/types.ts, service 1.25.0)
// that matter with no explicit keys: host and port from the URI (port 5432 when absent, parseInt of a string),
// the database from the path without its first `/`, user and password from `userinfo.split(':')`, no
// percent-decoding anywhere; it refuses other schemes and an empty host, user, password or database.
//   node read-dsn.mjs < dsns.json   (a JSON array of strings) → a JSON array, one reading per DSN:
//   {user, password, host, port, database} or {error}
import { readFileSync } from 'node:fs';
import * as urijs from 'uri-js';

function read(dsn) {
  const uri = urijs.parse(dsn);
  if (uri.scheme !== 'postgresql' && uri.scheme !== 'postgres') return { error: `scheme ${uri.scheme}` };
  const host = uri.host ?? '';
  const rawPort = uri.port ?? 5432;
  const port = typeof rawPort === 'string' ? parseInt(rawPort, 10) : rawPort;
  const database = uri.path?.substring(1) ?? '';
  const [user, password] = (uri.userinfo ?? '').split(':');
  const reading = { user: user ?? '', password: password ?? '', host, port, database };
  for (const field of ['host', 'user', 'password', 'database']) {
    if (reading[field] === '') return { error: `${field} required` };
  }
  if (!(port >= 1024 && port <= 65535)) return { error: `port ${port} not supported` };
  return reading;
}

const dsns = JSON.parse(readFileSync(0, 'utf8'));
process.stdout.write(JSON.stringify(dsns.map(read)));
