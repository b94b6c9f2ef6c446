# The test's stream, as declared in tests/vm/scripts.nix (`sync`): the token's claims, and the rows the test
# writes and waits for, by marker. `cargo xtask test` asks the service's sync-rules engine whether a token with
# these claims receives each of these rows, so write and sign only from here.
# Needs the globals `sync` and `jwt_key`, and the machines `client` and `source`.
import json
import shlex

SYNC = json.loads(sync)


def sync_token(**overrides: str) -> str:
    """A JWT with the declared claims (`overrides` replacing some), valid for 2 h, signed with the key whose
    public half the client's JWKS serves."""
    claims = json.dumps({**SYNC["claims"], **overrides})
    script = (
        "import json, jwt, sys, time; now = int(time.time()); "
        "claims = dict(json.loads(sys.argv[1]), iat=now, exp=now + 7200); "
        f"print(jwt.encode(claims, open('{jwt_key}').read(), algorithm='ES256', headers={{'kid': 'test-key'}}))"
    )
    return client.succeed(f"python3 -c {shlex.quote(script)} {shlex.quote(claims)}").strip()


def write_row(marker: str) -> None:
    """Writes the declared row `marker` names into the source: inserted, or over the row with the same id."""
    row = SYNC["rows"][marker]
    columns = list(row["values"])
    values = ", ".join("'" + str(row["values"][c]).replace("'", "''") + "'" for c in columns)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns)
    sql = (
        f"INSERT INTO {row['table']} ({', '.join(columns)}) VALUES ({values}) "
        f"ON CONFLICT (id) DO UPDATE SET {updates}"
    )
    source.succeed(f"sudo -u postgres psql -v ON_ERROR_STOP=1 -c {shlex.quote(sql)}")
