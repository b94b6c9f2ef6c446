# powersync-preflight: a DSN that cannot replicate never reaches the container, and the reason is shown.
# Globals from the Nix side: password (it must never appear in what the unit prints).
start_all()


def refused(reason):
    """The unit fails in ExecStartPre with `reason` in its status, and never prints the secret."""
    # Restart=always retries until systemd's start limit: either way the unit ends failed.
    server.wait_until_succeeds(
        "systemctl show -p Result --value podman-powersync.service | grep -xE 'exit-code|start-limit-hit' >/dev/null",
        timeout=300,
    )
    status = server.execute("systemctl status --no-pager -l -n 50 podman-powersync.service")[1]
    print(status)
    t.assertRegex(status, reason)
    t.assertNotIn(password, status)
    t.assertNotIn(password, server.succeed("journalctl -b -u podman-powersync.service --no-pager"))
    server.fail("podman container exists powersync")


with subtest("a Supavisor pooler host is refused"):
    server.wait_for_unit("multi-user.target")
    refused(r"(?i)pooler")

with subtest("replication=database in the DSN is refused"):
    # switch-to-configuration-ng exits 4 when a unit is failed after the switch: here that is the point.
    status, output = server.execute(
        "/run/current-system/specialisation/replication-database/bin/switch-to-configuration test 2>&1"
    )
    t.assertIn(status, (0, 4), output)
    server.succeed("systemctl reset-failed podman-powersync.service")
    server.execute("systemctl restart podman-powersync.service")
    refused(r"replication=database")
