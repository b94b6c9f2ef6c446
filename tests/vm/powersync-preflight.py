# powersync-preflight: a DSN that cannot replicate never reaches the container, the reason is shown, and the
# unit keeps retrying (with backoff) instead of giving up, so fixing the secret is all it takes.
# Globals from the Nix side: password (it must never appear in what the unit prints).
start_all()

UNIT = "podman-powersync.service"
server.wait_for_unit("multi-user.target")
# Activation repoints /run/current-system at the specialisation switched to, so keep the base's path.
base = server.succeed("readlink -f /run/current-system").strip()


def switch_to(specialisation):
    # switch-to-configuration-ng exits 4 when a unit is failed or auto-restarting with an error afterwards:
    # that is the state these subtests bring about on purpose.
    status, output = server.execute(f"{base}/specialisation/{specialisation}/bin/switch-to-configuration test 2>&1")
    t.assertIn(status, (0, 4), output)


def restarts():
    return int(server.succeed(f"systemctl show -p NRestarts --value {UNIT}").strip())


def refused(reason):
    """ExecStartPre refuses the start with `reason`, never printing the secret, and systemd keeps retrying."""
    first = restarts()
    # The restart policy (RestartSteps/RestartMaxDelaySec, no start limit) retries with growing delays.
    server.wait_until_succeeds(f"test \"$(systemctl show -p NRestarts --value {UNIT})\" -ge {first + 2}", timeout=300)
    t.assertNotEqual(server.succeed(f"systemctl show -p ActiveState --value {UNIT}").strip(), "failed")
    journal = server.succeed(f"journalctl -b -u {UNIT} --no-pager")
    t.assertRegex(journal, reason)
    t.assertNotIn(password, journal)
    t.assertNotIn(password, server.execute(f"systemctl status --no-pager -l -n 50 {UNIT}")[1])
    server.fail("podman container exists powersync")


with subtest("a Supavisor pooler host is refused"):
    refused(r"(?i)pooler")

with subtest("replication=database in the DSN is refused"):
    switch_to("replication-database")
    refused(r"replication=database")

with subtest("once the secret is fixed, the unit starts by itself"):
    switch_to("direct")
    server.wait_for_unit(UNIT, timeout=300)
    server.succeed("podman container exists powersync")
