# powersync-split: one sync runner and two API runners behind nginx, compaction, and the load probe.
# Globals from the Nix side: domain, jwt_key, ca_file, xtask, and sync (the token's claims and the rows this
# test writes: tests/vm/sync-rows.py, before this file).
# No `cmd | grep -q`: the driver runs commands under pipefail, and grep -q quitting early can fail the
# writer with SIGPIPE; grep reading to the end (output to /dev/null) cannot.
import json

start_all()

ACTIVE_SLOT = (
    "sudo -u postgres psql -tAc \"SELECT slot_name FROM pg_replication_slots "
    "WHERE active AND slot_name LIKE 'powersync\\_selfhost\\_%'\""
)
curl = client.succeed("command -v curl").strip()
client.succeed(
    "echo '{\"buckets\": [], \"include_checksum\": true, \"raw_data\": true, \"client_id\": \"vm-split\"}'"
    " > /tmp/stream-request.json"
)
jwt = sync_token()
client.succeed(f"echo '{jwt}' > /tmp/jwt")


def invocation(unit):
    return server.succeed(f"systemctl show -p InvocationID --value {unit}").strip()


with subtest("one sync runner and two API runners come up, each on its own 127.0.0.1 ports"):
    for unit in ["podman-powersync-sync", "podman-powersync-api-1", "podman-powersync-api-2"]:
        server.wait_for_unit(f"{unit}.service")
    for port in [8080, 8081]:
        server.wait_until_succeeds(f"curl -fsS http://127.0.0.1:{port}/probes/liveness", timeout=300)
    # The sync runner serves no HTTP; its health is the freshness of its probe file.
    server.wait_until_succeeds("podman healthcheck run powersync-sync", timeout=300)
    for port in [9464, 9465, 9466]:
        server.wait_until_succeeds(f"curl -fsS -o /dev/null http://127.0.0.1:{port}/metrics", timeout=300)
    source.wait_until_succeeds(ACTIVE_SLOT + " | grep . >/dev/null", timeout=300)
    slot = source.succeed(ACTIVE_SLOT).strip()

with subtest("a client keeps a stream open through nginx, reconnecting as the SDKs do"):
    client.wait_for_unit("jwks.service")
    client.wait_until_succeeds(
        f"test \"$({curl} -s -o /dev/null -w '%{{http_code}}' --max-time 5 -X POST https://{domain}/sync/stream "
        f"-H 'Authorization: Bearer {jwt}' -H 'Content-Type: application/json' -d @/tmp/stream-request.json)\" = 200",
        timeout=360,
    )
    client.succeed(
        "systemd-run --unit=stream --property=StandardOutput=append:/tmp/stream.ndjson "
        "/bin/sh -c 'while true; do "
        f"{curl} -sS -N --max-time 600 -X POST https://{domain}/sync/stream "
        f"-H \"Authorization: Bearer {jwt}\" -H \"Content-Type: application/json\" -d @/tmp/stream-request.json; "
        "sleep 1; done'"
    )
    client.wait_until_succeeds("grep -q checkpoint_complete /tmp/stream.ndjson", timeout=120)
    write_row("through-nginx")
    client.wait_until_succeeds("grep -q through-nginx /tmp/stream.ndjson", timeout=120)

with subtest("with either API runner stopped, the client is served by the other"):
    for stopped, row in [("api-1", "while-api-1-stopped"), ("api-2", "while-api-2-stopped")]:
        server.succeed(f"systemctl stop podman-powersync-{stopped}.service")
        write_row(row)
        client.wait_until_succeeds(f"grep -q {row} /tmp/stream.ndjson", timeout=180)
        server.succeed(f"systemctl start podman-powersync-{stopped}.service")
        server.wait_for_unit(f"podman-powersync-{stopped}.service")

with subtest("a killed sync runner is brought back by systemd and resumes on the same slot"):
    before = invocation("podman-powersync-sync.service")
    server.succeed("podman kill --signal KILL powersync-sync")
    server.wait_until_succeeds(
        f"test \"$(systemctl show -p InvocationID --value podman-powersync-sync.service)\" != '{before}'",
        timeout=180,
    )
    server.wait_for_unit("podman-powersync-sync.service")
    # The killed runner's lock expires within ~60 s; then the new one takes the same slot.
    source.wait_until_succeeds(ACTIVE_SLOT + f" | grep -x '{slot}' >/dev/null", timeout=300)
    t.assertEqual(source.succeed(ACTIVE_SLOT).strip(), slot)
    write_row("after-sync-restart")
    client.wait_until_succeeds("grep -q after-sync-restart /tmp/stream.ndjson", timeout=180)

with subtest("a manual start of the compaction succeeds and records its metric"):
    server.succeed("systemctl start powersync-compact.service")  # a oneshot: returns when it is done
    server.succeed(
        "grep -E '^powersync_compact_last_success_timestamp_seconds [0-9]+$' "
        "/var/lib/prometheus-node-exporter-text/powersync-compact.prom"
    )
    server.succeed("grep -x 'powersync_compact_last_exit_code 0' /var/lib/prometheus-node-exporter-text/powersync-compact.prom")

with subtest("the load probe holds a few hundred streams with none refused"):
    report = client.succeed(
        f"{xtask} load https://{domain} --streams 250 --duration 60 --ramp 25 --jwt-file /tmp/jwt --ca-file {ca_file} --json"
    )
    print(report)
    streams = json.loads(report)["streams"]
    t.assertEqual(streams["refused"], 0, report)
    t.assertEqual(streams["failed"], 0, report)
    t.assertEqual(streams["accepted"], 250, report)
