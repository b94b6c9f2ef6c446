# powersync-e2e: what an operator checks after a deploy, in the order it can go wrong.
# Globals from the Nix side: source_address, server_address, replication_password, domain, jwt_key, ca_file,
# xtask, and sync (the token's claims and the rows this test writes: tests/vm/sync-rows.py, before this file).
# No `cmd | grep -q`: the driver runs commands under pipefail, and grep -q quitting early can fail the
# writer with SIGPIPE; grep reading to the end (output to /dev/null) cannot.
import json

start_all()

# The stream request below runs under systemd-run, which looks up a bare program name in the manager's
# search path; on NixOS that holds no curl, so hand it the absolute path.
curl = client.succeed("command -v curl").strip()
# What the SDKs send to open a stream; kept in a file so no shell quoting stands in the way.
client.succeed(
    "echo '{\"buckets\": [], \"include_checksum\": true, \"raw_data\": true, \"client_id\": \"vm-test\"}'"
    " > /tmp/stream-request.json"
)


def stream_request(jwt, options):
    """curl opening a sync stream through nginx with `jwt`."""
    return (
        f"{curl} {options} -X POST https://{domain}/sync/stream -H 'Authorization: Bearer {jwt}' "
        "-H 'Content-Type: application/json' -d @/tmp/stream-request.json"
    )


def status_of(jwt):
    """The shell command printing the HTTP status of a stream request (the stream is cut after 5 s)."""
    return stream_request(jwt, "-s -o /dev/null -w '%{http_code}' --max-time 5")


with subtest("the v6egress network and the container come up"):
    server.wait_for_unit("init-v6egress-network.service")
    server.wait_for_unit("podman-powersync.service")
    server.wait_until_succeeds("curl -fsS http://127.0.0.1:8080/probes/liveness", timeout=300)

with subtest("the container reached the IPv6-only source through v6egress"):
    # The source listens on its IPv6 address only, so any replication client came over IPv6; NAT66 makes
    # it the server's own address.
    source.wait_until_succeeds(
        f"sudo -u postgres psql -tAc \"SELECT client_addr FROM pg_stat_replication\" | grep -F '{server_address}'",
        timeout=300,
    )

with subtest("a slot <prefix><id>_<hex> exists and is active on the source"):
    source.wait_until_succeeds(
        "sudo -u postgres psql -tAc \"SELECT slot_name FROM pg_replication_slots "
        "WHERE active AND slot_name ~ '^powersync_selfhost_[0-9]+_[0-9a-f]{4}$'\" | grep . >/dev/null",
        timeout=300,
    )

with subtest("liveness answers through nginx over TLS; the API port does not reach the network"):
    client.wait_until_succeeds(f"curl -fsS https://{domain}/probes/liveness", timeout=120)
    # That answer came over 443, open because the module opens it (nginx.openFirewall on web-arm): the test
    # opens no port of its own.
    client.fail("curl -sS --max-time 5 http://server:8080/probes/liveness")  # published on 127.0.0.1 only

with subtest("the public vhost sends HSTS and keeps the admin API off"):
    client.succeed(f"curl -fsS -D /tmp/headers -o /dev/null https://{domain}/probes/liveness")
    client.succeed("grep -i '^strict-transport-security: max-age=' /tmp/headers")
    t.assertEqual(
        client.succeed(f"curl -s -o /dev/null -w '%{{http_code}}' https://{domain}/api/admin/v1/diagnostics").strip(),
        "404",
    )

with subtest("a client JWT opens a sync stream that receives a row inserted afterwards"):
    good = sync_token()
    client.wait_for_unit("jwks.service")
    # The service may have fetched the JWKS before the client served it; it refetches for an unknown key.
    client.wait_until_succeeds(f"test \"$({status_of(good)})\" = 200", timeout=360)
    client.succeed(
        "systemd-run --unit=stream --property=StandardOutput=file:/tmp/stream.ndjson "
        + stream_request(good, "-sS -N --max-time 240")
    )
    client.wait_until_succeeds("grep -q checkpoint /tmp/stream.ndjson", timeout=120)
    write_row("inserted-after-connect")
    client.wait_until_succeeds("grep -q inserted-after-connect /tmp/stream.ndjson", timeout=120)

with subtest("a JWT for another audience is refused"):
    t.assertEqual(client.succeed(status_of(sync_token(aud="someone-else")) + " || true").strip(), "401")

with subtest("the lag metric is served on 127.0.0.1 only"):
    server.wait_until_succeeds(
        "curl -fsS -o /tmp/metrics http://127.0.0.1:9464/metrics && grep -q powersync_replication_lag_seconds /tmp/metrics"
    )
    client.fail("curl -sS --max-time 5 http://server:9464/metrics")

with subtest("the container runs bounded: memory, heap, stop timeout, noexec tmpfs, read-only elsewhere"):
    inspected = json.loads(server.succeed("podman inspect powersync"))[0]
    t.assertEqual(inspected["HostConfig"]["Memory"], 1024 * 1024 * 1024)
    t.assertEqual(inspected["Config"]["StopTimeout"], 20)
    t.assertIn("NODE_OPTIONS=--max-old-space-size=819", inspected["Config"]["Env"])
    mounts = [line.split() for line in server.succeed("podman exec powersync cat /proc/mounts").splitlines()]
    tmp_options = [fields[3] for fields in mounts if fields[1] == "/tmp"]
    t.assertEqual(len(tmp_options), 1, mounts)
    t.assertIn("noexec", tmp_options[0])
    t.assertIn("size=65536k", tmp_options[0])
    for path in ["/run/probe", "/var/tmp/probe", "/app/probe"]:
        server.fail(f"podman exec powersync touch {path}")

with subtest("a LAN neighbour routing the container network via the server reaches nothing in it"):
    server.succeed("nft list table inet v6egress_guard")
    container_ip = inspected["NetworkSettings"]["Networks"]["v6egress"]["IPAddress"]
    server_ip = client.succeed("getent ahostsv4 server").split()[0]
    client.succeed(f"ip route add 10.89.64.0/24 via {server_ip}")
    client.fail(f"curl -sS --max-time 5 http://{container_ip}:8080/probes/liveness")
    client.fail(f"curl -sS --max-time 5 http://{container_ip}:9464/metrics")
    client.succeed("ip route del 10.89.64.0/24")

with subtest("the storage role can neither administer nor replicate"):
    attributes = server.succeed(
        "sudo -u postgres psql -tAc \"SELECT rolsuper, rolreplication FROM pg_roles WHERE rolname = 'powersync_storage'\""
    ).strip()
    t.assertEqual(attributes, "f|f")

with subtest("no secret is in the Nix store the unit runs from"):
    storage_password = server.succeed("cat /var/lib/powersync/storage-password").strip()
    t.assertTrue(len(storage_password) >= 32)
    server.succeed(
        "systemctl cat podman-powersync.service | grep -o '/nix/store/[^ \"/]*' | sort -u"
        " | xargs nix-store -qR | sort -u > /tmp/closure"
    )
    for secret in [storage_password, replication_password]:
        server.fail(f"xargs grep -rlF -- '{secret}' < /tmp/closure")
    # PostgreSQL logs every statement here (log_statement = all): the role's password went in as a verifier.
    server.fail(f"journalctl -u postgresql.service --no-pager | grep -F -- '{storage_password}'")
    print(json.dumps({"closure paths checked": int(server.succeed("wc -l < /tmp/closure").strip())}))

with subtest("powersync-verify on the server is all green"):
    # The checklist reads the journal since the container's start. This one started before the client served
    # its JWKS, and the 401s (PSYNC_S2204) of the client's first attempts above are in it: restart it, as a
    # deploy would, so the journal is the steady state's.
    server.succeed("systemctl restart podman-powersync.service")
    server.wait_for_unit("podman-powersync.service")
    # The watchdog timer first fires minutes after boot; its metrics are part of the checklist.
    server.succeed("systemctl start powersync-slot-watchdog.service")
    server.wait_until_succeeds("powersync-verify", timeout=300)  # health 'starting' and the lag gauge need a moment
    table = server.succeed("powersync-verify")
    report = json.loads(server.succeed("powersync-verify --json"))
    t.assertEqual([c for c in report["checks"] if c["status"] != "pass"], [], table)
    for secret in [replication_password, storage_password]:
        t.assertNotIn(secret, table + json.dumps(report))

with subtest("the outside checks from the client pass: TLS, HSTS, 401 without a token, closed ports, a stream"):
    client.succeed(f"echo '{sync_token()}' > /tmp/token.jwt")
    status, output = client.execute(
        f"{xtask} verify server --outside-only --url https://{domain} --ca-file {ca_file}"
        " --jwt-file /tmp/token.jwt --private-port 8080 --private-port 9464 --json"
    )
    print(output)
    t.assertEqual(status, 0, output)
    t.assertTrue(json.loads(output)["ok"], output)


def source_sql(query):
    """What the source database answers to a read-only query."""
    return source.succeed(f"sudo -u postgres psql -tAc \"{query}\"").strip()


with subtest("a teardown drops the slot, and nothing starts the service again: not compaction, not a deploy"):
    slots = "SELECT count(*) FROM pg_replication_slots WHERE slot_name ~ '^powersync_selfhost_'"
    server.succeed("powersync-teardown --yes")
    t.assertEqual(source_sql(slots), "0")
    # The daily compaction used to want the runner, and so started it again: a new slot on the source.
    server.succeed("systemctl start powersync-compact.service")
    server.succeed("systemctl start podman-powersync.service")  # what a deploy or a boot asks for
    server.succeed("systemctl start powersync-slot-watchdog.service")
    server.succeed("sleep 20")
    server.fail("systemctl is-active podman-powersync.service")
    t.assertEqual(source_sql(slots), "0")
    # Undone as the teardown says: the service starts and replicates from scratch.
    server.succeed("rm -f /var/lib/powersync/decommissioned && systemctl start podman-powersync.service")
    source.wait_until_succeeds(f"test \"$(sudo -u postgres psql -tAc \"{slots}\")\" = 1", timeout=300)
